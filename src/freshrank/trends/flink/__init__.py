"""The trend job on Apache Flink (PyFlink SQL in its own virtualenv ``.venv-flink``) and its launcher."""
