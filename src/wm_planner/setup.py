from setuptools import find_packages, setup

package_name = 'wm_planner'


setup(
    name=package_name,
    version='0.1.0',
    # wm_planner and its sub-packages (wm_planner.critics).
    packages=find_packages(include=[package_name, package_name + '.*']),
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + package_name]),
        ('share/' + package_name, ['package.xml']),
    ],
    install_requires=['setuptools'],
    zip_safe=True,
    maintainer='wm-nav maintainers',
    maintainer_email='maintainers@wm-nav.dev',
    description='Sampling-based local planner (with pluggable critics) of the wm navigation stack.',
    license='Apache-2.0',
    extras_require={'test': ['pytest']},
    entry_points={
        'console_scripts': [
            'planner = wm_planner.planner_node:main',
        ],
    },
)
