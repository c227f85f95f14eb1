# `cmake --install`: the CLI, the public headers, libkestrel.so (the whole C++ API: model opening,
# Detector, pipelines, graph IR and CPU backend; CUDA builds add the builder and libkestrel_runtime.so),
# kestrelConfig.cmake with exported targets (kestrel::kestrel, kestrel::runtime) and the Python package
# (python/CMakeLists.txt). Shared libraries carry a SONAME and export only the kestrel namespace.
include(CMakePackageConfigHelpers)

set(KESTREL_SOVERSION ${PROJECT_VERSION_MAJOR})
set(kestrel_symbols "LINKER:--version-script=${PROJECT_SOURCE_DIR}/cmake/exported_symbols.map")

# libkestrel.so: every layer's objects in one library, linked against the layers' own dependencies.
set(kestrel_layers kestrel_util kestrel_ir kestrel_onnx kestrel_passes kestrel_cpu kestrel_network kestrel_yolo
    kestrel_eval kestrel_quant kestrel_pipeline kestrel_model)
if(KESTREL_HAS_CUDA)
  list(APPEND kestrel_layers kestrel_builder kestrel_cuda_pipeline)
endif()
set(kestrel_objects)
foreach(layer ${kestrel_layers})
  list(APPEND kestrel_objects $<TARGET_OBJECTS:${layer}>)
endforeach()
add_library(kestrel_shared SHARED ${kestrel_objects})
target_link_libraries(kestrel_shared PRIVATE ${kestrel_layers})
target_include_directories(kestrel_shared INTERFACE $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
target_compile_features(kestrel_shared INTERFACE cxx_std_20)
target_link_options(kestrel_shared PRIVATE ${kestrel_symbols})
set_target_properties(kestrel_shared PROPERTIES OUTPUT_NAME kestrel EXPORT_NAME kestrel VERSION ${PROJECT_VERSION}
                      SOVERSION ${KESTREL_SOVERSION} INSTALL_RPATH "$ORIGIN")
if(KESTREL_HAS_CUDA)
  target_link_libraries(kestrel_shared PUBLIC kestrel_runtime)
  set_target_properties(kestrel_runtime PROPERTIES EXPORT_NAME runtime VERSION ${PROJECT_VERSION}
                        SOVERSION ${KESTREL_SOVERSION})
  target_link_options(kestrel_runtime PRIVATE ${kestrel_symbols})
  target_include_directories(kestrel_runtime INTERFACE $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
  install(TARGETS kestrel_runtime EXPORT kestrelTargets LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
endif()

install(TARGETS kestrel_shared EXPORT kestrelTargets LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
set_target_properties(kestrel PROPERTIES INSTALL_RPATH "$ORIGIN/../${CMAKE_INSTALL_LIBDIR}")
install(TARGETS kestrel RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(DIRECTORY include/kestrel DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(FILES ${CMAKE_BINARY_DIR}/generated/kestrel/version.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/kestrel)

set(config_dir ${CMAKE_INSTALL_LIBDIR}/cmake/kestrel)
install(EXPORT kestrelTargets NAMESPACE kestrel:: DESTINATION ${config_dir})
configure_package_config_file(cmake/kestrelConfig.cmake.in ${CMAKE_BINARY_DIR}/kestrelConfig.cmake
                              INSTALL_DESTINATION ${config_dir})
write_basic_package_version_file(${CMAKE_BINARY_DIR}/kestrelConfigVersion.cmake COMPATIBILITY SameMajorVersion)
install(FILES ${CMAKE_BINARY_DIR}/kestrelConfig.cmake ${CMAKE_BINARY_DIR}/kestrelConfigVersion.cmake
        DESTINATION ${config_dir})
