# Sources of core's numerics (formats, observers, fake/real quantization, packing).
# Included by core/CMakeLists.txt; paths are relative to core/.
set(QUARRY_NUMERICS_SOURCES
)
