"""The foundation every layer stands on: config, paths, caching, provenance, atomic writes, runtime."""
