"""Users of the pipeline that score models: V-NIAH, text NIAH, multiple-choice video QA and
the lmms-eval plugin. Filled in by the benchmark issue.
"""
