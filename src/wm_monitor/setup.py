from setuptools import find_packages, setup

package_name = 'wm_monitor'


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
    description='Per-robot monitoring: online world-model prediction error, high-error '
                'transitions to MCAP, a Prometheus endpoint.',
    license='Apache-2.0',
    extras_require={'test': ['pytest']},
    entry_points={
        'console_scripts': [
            'monitor = wm_monitor.monitor_node:main',
        ],
    },
)
