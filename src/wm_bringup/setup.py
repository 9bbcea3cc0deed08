import os
from glob import glob

from setuptools import find_packages, setup

package_name = 'wm_bringup'


def data_tree(src, dst):
    """data_files entries installing each non-hidden file below src into dst, keeping sub-dirs."""
    here = os.path.dirname(os.path.abspath(__file__))
    entries = {}
    for path in sorted(glob(os.path.join(here, src, '**', '*'), recursive=True)):
        if os.path.isfile(path):
            rel = os.path.relpath(path, here)  # data_files sources are relative to setup.py
            sub = os.path.relpath(os.path.dirname(rel), src)
            entries.setdefault(os.path.normpath(os.path.join(dst, sub)), []).append(rel)
    return sorted(entries.items())


setup(
    name=package_name,
    version='0.1.0',
    packages=find_packages(include=[package_name, package_name + '.*']),
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + package_name]),
        ('share/' + package_name, ['package.xml']),
    ]
    # launch/ and config/ are relative symlinks to the repository's top-level folders.
    + data_tree('launch', 'share/' + package_name + '/launch')
    + data_tree('config', 'share/' + package_name + '/config'),
    install_requires=['setuptools'],
    zip_safe=True,
    maintainer='wm-nav maintainers',
    maintainer_email='maintainers@wm-nav.dev',
    description='Launch files, configuration and the lifecycle manager of the wm navigation stack.',
    license='Apache-2.0',
    extras_require={'test': ['pytest']},
    entry_points={
        'console_scripts': [
            'demo = wm_eval.demo:main',
            'lifecycle_manager = wm_bringup.lifecycle_manager:main',
        ],
    },
)
