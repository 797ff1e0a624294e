"""The README's demo trains to its promised accuracy on every backend."""

import re

import pytest

from dandelion.demo.__main__ import main


def test_mlp_demo_reaches_095_on_backend(backend, capsys):
    accuracy = main(["--backend", backend, "--model", "mlp", "--epochs", "10"])
    printed = capsys.readouterr()
    match = re.search(r"^test accuracy: (0\.\d{3})$", printed.out, re.MULTILINE)
    assert match, printed.out
    assert float(match.group(1)) == pytest.approx(accuracy, abs=1e-3)
    assert accuracy >= 0.95
    assert "epoch 10/10" in printed.err  # progress output


def test_demo_resumes_from_its_checkpoint_exactly(backend, tmp_path, capsys):
    path = str(tmp_path / "digits.ckpt")
    uninterrupted = main(["--backend", backend, "--epochs", "2"])
    main(["--backend", backend, "--epochs", "1", "--save", path])
    resumed = main(["--backend", backend, "--epochs", "2", "--resume", path])
    assert "resumed from" in capsys.readouterr().err
    assert resumed == uninterrupted
    with pytest.raises(SystemExit, match="holds a 'mlp' model, not 'cnn'"):
        main(["--backend", backend, "--model", "cnn", "--epochs", "2", "--resume", path])
