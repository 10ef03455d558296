"""SQL migrations, applied in file-name order by `charla migrate` and at startup (see charla.core.db)."""
