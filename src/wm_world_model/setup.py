import glob
import os

from setuptools import find_packages, setup

package_name = 'wm_world_model'


def _artifacts():
    """Every shipped artifact directory under models/, installed under share/."""
    out = []
    for d in sorted(glob.glob('models/worldmodel-*')):
        files = sorted(f for f in glob.glob(os.path.join(d, '*')) if os.path.isfile(f))
        out.append((os.path.join('share', package_name, d), files))
    return out


setup(
    name=package_name,
    version='0.1.0',
    packages=find_packages(include=[package_name, package_name + '.*']),
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + package_name]),
        ('share/' + package_name, ['package.xml']),
    ] + _artifacts(),
    install_requires=['setuptools'],
    zip_safe=True,
    maintainer='wm-nav maintainers',
    maintainer_email='maintainers@wm-nav.dev',
    description='Hybrid world model (kinematics + learned residual), training and artifacts.',
    license='Apache-2.0',
    extras_require={'test': ['pytest']},
    entry_points={
        'console_scripts': [
            'train = wm_world_model.train:main',
            'evaluate = wm_world_model.evaluate:main',
            'sign = wm_world_model.sign:main',
        ],
    },
)
