"""Users of the pipeline that train the projector and compressor parts (peft / trl /
accelerate). Filled in by the training and default-model issues.
"""
