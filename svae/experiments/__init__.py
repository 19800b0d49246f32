"""Many runs and what compares them: markdown tables of evaluated runs (report), lambda sweeps (sweep)
and studies of presets x variants x lambdas x seeds (study)."""
