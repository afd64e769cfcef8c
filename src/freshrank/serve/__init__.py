"""Stage 7: serving (KServe classifier server, search API and workbench)."""
