"""The data layer: manifests, FAHR-Synth, real-data adapters, alignment, loading and shards."""
