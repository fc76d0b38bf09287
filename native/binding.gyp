# The native executor's addon (src/engine/native-ort.ts loads it). Built by scripts/build-native.mjs (npm run
# build:native). It compiles against ONNX Runtime's C API header only (include/onnxruntime, from the release that
# package.json pins for onnxruntime-node) and links nothing of ONNX Runtime or CUDA: the library is dlopen()ed at
# run time, so one binary serves CPU and GPU hosts.
{
  "targets": [
    {
      "target_name": "dust_ort",
      "sources": ["src/dust_ort.cc"],
      "include_dirs": ["<!(node -p \"require('path').dirname(require.resolve('node-addon-api/package.json'))\")", "include"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++17"],
      # No floating-point contraction: axpyRows rounds as JavaScript does.
      "cflags_cc": ["-std=c++17", "-fexceptions", "-ffp-contract=off", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      # No debug info (it would carry this machine's paths) and no run path: the .node travels to GPU hosts.
      "ldflags": ["-s"],
      "libraries": ["-ldl"]
    }
  ]
}
