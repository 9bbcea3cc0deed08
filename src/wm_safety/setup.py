from setuptools import find_packages, setup

package_name = 'wm_safety'


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
    description='Model-free safety layer: collision monitor on raw points, command mux with '
                'e-stop, speed zones and velocity smoother.',
    license='Apache-2.0',
    extras_require={'test': ['pytest']},
    entry_points={
        'console_scripts': [
            'collision_monitor = wm_safety.collision_monitor_node:main',
        ],
    },
)
