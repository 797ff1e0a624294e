"""``dandelion.ops.native``: kernels built as shared libraries for the Numba backend.

Built into a throw-away folder (``tmp_path``): the library is compiled with
PyTensor's compiler, filed under a hash of its source, loaded again from the file without
a rebuild, and declined (None) with a warning when the source does not compile, when
``cxx`` is empty and under ``DANDELION_NATIVE_KERNELS=0``.
"""

from __future__ import annotations

import ctypes

import pytensor
import pytest

from dandelion.ops import native

SOURCE = 'extern "C" int dandelion_test_add(int a, int b) { return a + b; }\n'

needs_compiler = pytest.mark.skipif(not pytensor.config.cxx, reason="no C++ compiler (pytensor.config.cxx is empty)")


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch):
    native.load_library.cache_clear()
    monkeypatch.setattr(native, "native_folder", lambda: tmp_path / "dandelion_native")
    yield tmp_path
    native.load_library.cache_clear()


@needs_compiler
def test_a_library_is_built_once_and_loaded_from_its_file(fresh_cache, monkeypatch):
    library = native.load_library("test_add", SOURCE)
    assert library.dandelion_test_add(2, 3) == 5
    path = native.library_path("test_add", SOURCE)
    assert path.is_file() and path.parent == fresh_cache / "dandelion_native"
    assert native.function_address(library, "dandelion_test_add") == ctypes.cast(library.dandelion_test_add, ctypes.c_void_p).value
    # a new process (here: a cleared cache) loads the file without compiling
    native.load_library.cache_clear()
    monkeypatch.setattr(native, "_build", lambda *a: pytest.fail("rebuilt a library that was on disk"))
    assert native.load_library("test_add", SOURCE).dandelion_test_add(4, 5) == 9
    # another source is another file
    assert native.library_path("test_add", SOURCE + "\n") != path


@needs_compiler
def test_a_source_that_does_not_compile_warns_and_declines(fresh_cache):
    with pytest.warns(RuntimeWarning, match="building test_broken failed"):
        assert native.load_library("test_broken", "this is not C++") is None
    assert not native.library_path("test_broken", "this is not C++").exists()
    assert not any(p.name.startswith("build_") for p in (fresh_cache / "dandelion_native").iterdir())


def test_no_compiler_or_the_switch_declines(fresh_cache, monkeypatch):
    with pytensor.config.change_flags(cxx=""):
        assert native.load_library("test_add", SOURCE) is None
    native.load_library.cache_clear()
    monkeypatch.setenv("DANDELION_NATIVE_KERNELS", "0")
    assert not native.native_kernels_enabled()
    assert native.load_library("test_add", SOURCE) is None
    assert not (fresh_cache / "dandelion_native").exists()


@needs_compiler
def test_an_unwritable_cache_folder_warns_and_declines(tmp_path, monkeypatch):
    native.load_library.cache_clear()
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("a file where the cache folder would go")
    monkeypatch.setattr(native, "native_folder", lambda: blocker / "dandelion_native")
    with pytest.warns(RuntimeWarning, match="test_add unavailable"):
        assert native.load_library("test_add", SOURCE) is None
    native.load_library.cache_clear()
