from setuptools import find_packages, setup

package_name = 'wm_service'


setup(
    name=package_name,
    version='0.1.0',
    packages=find_packages(include=[package_name, package_name + '.*']),
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + package_name]),
        ('share/' + package_name, ['package.xml', 'openapi.json']),
    ],
    install_requires=['setuptools'],
    zip_safe=True,
    maintainer='wm-nav maintainers',
    maintainer_email='maintainers@wm-nav.dev',
    description='World-model service: /v1/predict and /v1/plan over HTTP with dynamic '
                'batching, for what-if queries at the fleet level.',
    license='Apache-2.0',
    extras_require={'test': ['pytest']},
    entry_points={
        'console_scripts': [
            'service = wm_service.__main__:main',
        ],
    },
)
