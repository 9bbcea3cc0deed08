from setuptools import find_packages, setup

package_name = 'wm_perception'


setup(
    name=package_name,
    version='0.1.0',
    packages=find_packages(include=[package_name, package_name + '.*']),
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + package_name]),
        ('share/' + package_name, ['package.xml']),
        # the trained scene-encoder artifact (parameter encoder_artifact)
        ('share/' + package_name + '/models/encoder_v2',
         ['models/encoder_v2/encoder.json', 'models/encoder_v2/encoder.pt']),
    ],
    install_requires=['setuptools'],
    zip_safe=True,
    maintainer='wm-nav maintainers',
    maintainer_email='maintainers@wm-nav.dev',
    description='Voxelisation and distance-field perception for the wm navigation stack.',
    license='Apache-2.0',
    extras_require={'test': ['pytest']},
    entry_points={
        'console_scripts': [
            'perception = wm_perception.perception_node:main',
            'replay = wm_perception.tools.replay_node:main',
            'inspect_cloud = wm_perception.tools.inspect_cloud:main',
        ],
    },
)
