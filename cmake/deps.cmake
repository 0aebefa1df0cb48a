# Third-party libraries, all from Debian packages (README lists them). One interface target,
# x2v_deps, carries them; optional ones define X2V_HAVE_<NAME>.
find_package(PkgConfig REQUIRED)
find_package(OpenMP REQUIRED)
find_package(nlohmann_json 3.10 REQUIRED)
find_package(CLI11 REQUIRED)
find_package(PNG REQUIRED)
find_package(JPEG REQUIRED)
find_package(ZLIB REQUIRED)
pkg_check_modules(OPENBLAS REQUIRED IMPORTED_TARGET openblas)
pkg_check_modules(SENTENCEPIECE REQUIRED IMPORTED_TARGET sentencepiece)
pkg_check_modules(FFMPEG IMPORTED_TARGET libavcodec libavformat libswscale libavutil)

add_library(x2v_deps INTERFACE)
target_link_libraries(x2v_deps INTERFACE OpenMP::OpenMP_CXX nlohmann_json::nlohmann_json CLI11::CLI11
                      PNG::PNG JPEG::JPEG ZLIB::ZLIB PkgConfig::OPENBLAS PkgConfig::SENTENCEPIECE)
if(FFMPEG_FOUND)
  target_link_libraries(x2v_deps INTERFACE PkgConfig::FFMPEG)
  target_compile_definitions(x2v_deps INTERFACE X2V_HAVE_FFMPEG=1)
else()
  message(WARNING "FFmpeg libraries not found: x2v will write PNG frames only, not MP4")
endif()
