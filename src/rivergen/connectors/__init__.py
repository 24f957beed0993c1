"""One module per database engine behind one small protocol; driver errors become error codes."""
