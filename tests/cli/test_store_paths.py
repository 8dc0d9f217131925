"""`xlt report` and `xlt sync` take a store as a URI or a bare path (issue 36). In-process."""
import sqlite3

from xlt.cli.main import main, store_uri


def test_a_bare_path_is_the_sqlite_store_it_names(tmp_path, capsys):
    db = tmp_path / "logs" / "mlflow.db"
    db.parent.mkdir()
    sqlite3.connect(db).close()
    assert store_uri(str(db)) == store_uri(str(db.parent)) == f"sqlite:///{db}"
    assert store_uri("http://127.0.0.1:5000") == "http://127.0.0.1:5000"
    (tmp_path / "mlruns" / "0").mkdir(parents=True)
    assert store_uri(str(tmp_path / "mlruns")) == f"file://{tmp_path / 'mlruns'}"


def test_a_path_that_is_no_store_is_one_line(tmp_path, capsys):
    for command in (["report"], ["sync", "--aim-repo", str(tmp_path / "aim")]):
        assert main([*command, "--mlflow-tracking-uri", str(tmp_path)]) == 2
        err = capsys.readouterr().err
        assert err == (f"xlt: error: --mlflow-tracking-uri: {str(tmp_path)!r} is no MLflow store: give "
                       "sqlite:///PATH/mlflow.db, a server's http://HOST:PORT, or the path of an mlflow.db file\n")
    assert not (tmp_path / "aim").exists()
