{
  "targets": [
    {
      "target_name": "ganfleet_native",
      "sources": [
        "src/addon.cc",
        "src/api_conv.cc",
        "src/api_doorbell.cc",
        "src/api_sgemm.cc",
        "src/api_shared.cc",
        "src/api_update.cc",
        "src/conv_backprop_filter.cc",
        "src/conv_backprop_input.cc",
        "src/conv_forward.cc",
        "src/conv_geometry.cc",
        "src/conv_windows.cc",
        "src/gemm_plan.cc",
        "src/isa.cc",
        "src/kernel.cc",
        "src/kernel_avx2.cc",
        "src/kernel_avx512.cc",
        "src/kernel_portable.cc",
        "src/napi_util.cc",
        "src/pack.cc",
        "src/sgemm.cc",
        "src/thread_pool.cc",
        "src/update_loops.cc",
        "src/workspace.cc"
      ],
      "cflags": ["-O3"],
      "cflags!": ["-fno-omit-frame-pointer"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++17", "-std=gnu++20"],
      "cflags_cc": ["-std=c++17", "-fexceptions"],
      "xcode_settings": {
        "GCC_ENABLE_CPP_EXCEPTIONS": "YES",
        "CLANG_CXX_LANGUAGE_STANDARD": "c++17",
        "GCC_OPTIMIZATION_LEVEL": "3"
      },
      "msvs_settings": {
        "VCCLCompilerTool": { "ExceptionHandling": 1, "Optimization": 2 }
      }
    }
  ]
}
