"""The one thing pyproject.toml cannot say: ship specs/ as the package ``zoo._builtin_specs``.

setuptools' package finder does not see a package whose folder is mapped from elsewhere
(``package-dir`` in pyproject.toml maps it to specs/), so the package list is built here.
"""

from setuptools import find_packages, setup

setup(packages=[*find_packages(include=["zoo", "zoo.*"]), "zoo._builtin_specs"])
