"""FAHR-Synth: procedurally rendered faces and cohorts with a planted, recorded truth."""
