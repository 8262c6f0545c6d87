"""The names an export is chosen by (--dtype, --weights), apart from torch: the command line builds its
`--help` from them without loading torch; checkpoint maps them to what they mean."""

# a weight precision's --dtype name -> the torch dtype's name (checkpoint.EXPORT_DTYPE_OF_NAME holds the dtypes)
TORCH_DTYPE_OF_EXPORT_DTYPE = {"fp16": "float16", "bf16": "bfloat16", "fp32": "float32"}
EXPORT_DTYPE_NAMES = tuple(TORCH_DTYPE_OF_EXPORT_DTYPE)

# which of a training checkpoint's generators an export writes: G's moving average, or the trained G itself
GENERATOR_WEIGHTS = ("averaged", "trained")
