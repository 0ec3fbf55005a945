"""The LeakSanitizer report filter: our leaks fail the check, the interpreter's do not."""

from __future__ import annotations

from pathlib import Path

from predis.benchtools.leaks import main, parse_report

OURS = """
=================================================================
==42==ERROR: LeakSanitizer: detected memory leaks

Direct leak of 4096 byte(s) in 1 object(s) allocated from:
    #0 0x7f0 in operator new(unsigned long) ../../asan_new_delete.cpp:95
    #1 0x7f1 in predis::SlabArena::grow() /src/csrc/cpu/slab_arena.cpp:88
    #2 0x7f2  (/site/predis/_core.cpython-311-x86_64-linux-gnu.so+0x1234)

Indirect leak of 24 byte(s) in 1 object(s) allocated from:
    #0 0x7f0 in __interceptor_malloc asan_malloc_linux.cpp:69
    #1 0x7f3 in _PyObject_Malloc Objects/obmalloc.c:2003

SUMMARY: AddressSanitizer: 4120 byte(s) leaked in 2 allocation(s).
"""

PYTHON_ONLY = """
Direct leak of 520 byte(s) in 1 object(s) allocated from:
    #0 0x7f0 in __interceptor_malloc asan_malloc_linux.cpp:69
    #1 0x7f3 in _PyObject_Malloc Objects/obmalloc.c:2003
    #2 0x7f4  (/usr/lib/libpython3.11.so.1.0+0x554ea7)
"""


def test_a_leak_in_predis_code_is_ours_and_others_are_not():
    report = parse_report(Path("asan.42"), OURS)
    assert [(leak.kind, leak.nbytes, leak.objects, leak.ours) for leak in report.leaks] == [
        ("direct", 4096, 1, True),
        ("indirect", 24, 1, False),
    ]
    assert len(report.leaks[0].frames) == 3
    assert report.errors == ()
    assert not parse_report(Path("asan.1"), PYTHON_ONLY).leaks[0].ours


def test_the_check_fails_on_our_leak_or_an_asan_error_and_passes_otherwise(tmp_path, capsys):
    (tmp_path / "asan.1").write_text(PYTHON_ONLY)
    assert main([str(tmp_path)]) == 0
    assert "0 leaks in Predis's code, 1 elsewhere" in capsys.readouterr().out
    (tmp_path / "asan.42").write_text(OURS)
    assert main([str(tmp_path)]) == 1
    assert "predis::SlabArena::grow" in capsys.readouterr().out
    (tmp_path / "asan.42").unlink()
    (tmp_path / "asan.7").write_text("==7==ERROR: AddressSanitizer: heap-use-after-free on ...")
    assert main([str(tmp_path)]) == 1
    (tmp_path / "asan.7").write_text("==7==LeakSanitizer has encountered a fatal error.")
    assert main([str(tmp_path)]) == 1
    assert main([str(tmp_path / "missing")]) == 2
