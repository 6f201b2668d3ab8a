"""`platform/` is a source folder: `import platform` must still be the standard library's module."""

import sysconfig
from pathlib import Path


def test_platform_is_the_standard_library_module():
    import platform

    stdlib = Path(sysconfig.get_paths()["stdlib"]).resolve()
    assert Path(platform.__file__).resolve().parent == stdlib
    assert platform.system()  # pandas, uuid and others call this


def test_no_init_in_platform_folder():
    root = Path(__file__).resolve().parents[2]
    assert (root / "platform" / "gristmill" / "__init__.py").is_file()
    assert not (root / "platform" / "__init__.py").exists()
