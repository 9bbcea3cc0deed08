#!/usr/bin/env python3
"""Point the ROS wheels' CMake export files at this machine's Python and numpy headers.

The ROS 2 wheels on PyPI were built in a manylinux container, and their CMake export files
(<venv>/share/<pkg>/cmake/*.cmake) hard-code that container's include directories:

    /opt/python/cp311-cp311/include/python3.11
    /opt/python/cp311-cp311/lib/python3.11/site-packages/numpy/_core/include

A package that runs rosidl_generate_interfaces links its Python type support against these
targets, so CMake fails unless the paths exist. This script rewrites any such Python include
directory and numpy include directory to the ones of the interpreter running it (run it with
the venv's python). It is idempotent: a second run changes nothing and prints "0 files changed".

Usage: .venv/bin/python scripts/fix_ros_wheel_paths.py [--prefix VENV] [--check]
"""
import argparse
import glob
import os
import re
import sys
import sysconfig

# A whole CMake list element (no quote, semicolon or whitespace inside) ending in a Python
# include directory, or in numpy's C include directory.
PY_INCLUDE_RE = re.compile(r'[^";\s]*/include/python3\.\d+(?![\w.])')
NUMPY_INCLUDE_RE = re.compile(r'[^";\s]*/site-packages/numpy/(?:_core|core)/include(?![\w/])')


def rewrite(text, py_include, np_include):
    text = PY_INCLUDE_RE.sub(lambda _m: py_include, text)
    return NUMPY_INCLUDE_RE.sub(lambda _m: np_include, text)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--prefix', default=sys.prefix,
                        help='venv prefix holding share/*/cmake (default: this interpreter\'s)')
    parser.add_argument('--check', action='store_true',
                        help='only report; exit 1 if any file would change')
    args = parser.parse_args(argv)

    py_include = sysconfig.get_config_var('INCLUDEPY') or sysconfig.get_paths()['include']
    try:
        import numpy
    except ImportError:
        print('fix_ros_wheel_paths: numpy is not installed in this interpreter', file=sys.stderr)
        return 2
    np_include = numpy.get_include()
    for path in (py_include, np_include):
        if not os.path.isdir(path):
            print('fix_ros_wheel_paths: missing include dir %s' % path, file=sys.stderr)
            return 2

    changed = 0
    files = sorted(glob.glob(os.path.join(args.prefix, 'share', '*', 'cmake', '*.cmake')))
    for path in files:
        with open(path, encoding='utf-8') as f:
            text = f.read()
        new = rewrite(text, py_include, np_include)
        if new != text:
            changed += 1
            if not args.check:
                tmp = path + '.tmp'
                with open(tmp, 'w', encoding='utf-8') as f:
                    f.write(new)
                os.replace(tmp, path)
    verb = 'would change' if args.check else 'changed'
    print('fix_ros_wheel_paths: %d of %d cmake files %s (python: %s, numpy: %s)'
          % (changed, len(files), verb, py_include, np_include))
    return 1 if (args.check and changed) else 0


if __name__ == '__main__':
    sys.exit(main())
