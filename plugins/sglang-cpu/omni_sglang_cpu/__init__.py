"""SGLang's runtime on a plain CPU: an out-of-tree ``SRTPlatform`` and the torch-native
pieces SGLang's CPU-less build lacks (Mamba-2 ops, relu2 in the native MoE, a CPU
``mm`` with ``out_dtype``)."""

#: The SGLang release these patches were written and tested against.
SGLANG_VERSION = "0.5.23"
#: ``SGLANG_PLATFORM`` value (and entry-point name) that selects this platform.
PLATFORM_NAME = "omni_cpu"
