from setuptools import find_packages, setup

package_name = 'wm_sim'


setup(
    name=package_name,
    version='0.1.0',
    packages=find_packages(include=[package_name, package_name + '.*']),
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + package_name]),
        ('share/' + package_name, ['package.xml']),
    ],
    install_requires=['setuptools'],
    zip_safe=True,
    maintainer='wm-nav maintainers',
    maintainer_email='maintainers@wm-nav.dev',
    description='Lightweight 2-D simulator publishing sensor data and odometry for the wm stack.',
    license='Apache-2.0',
    extras_require={'test': ['pytest']},
    entry_points={
        'console_scripts': [
            'simulator = wm_sim.sim_node:main',
            'datagen = wm_sim.datagen:main',
        ],
    },
)
