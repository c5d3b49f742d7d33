// The unit tests' sanitizer options in the sanitizer build (AGENTE_SANITIZE), compiled into unit_tests
// itself: ctest's per-test ENVIRONMENT cannot carry two variables through gtest_discover_tests (its
// list separator splits them), and a hand run (build-asan/tests/unit_tests --gtest_filter=...) then
// checks as ctest does. ASAN_OPTIONS / UBSAN_OPTIONS in the environment still override these.
// The options themselves are tests/CMakeLists.txt's, shared with the integration tests.
extern "C" const char* __asan_default_options() { return AGENTE_ASAN_OPTIONS; }
extern "C" const char* __ubsan_default_options() { return AGENTE_UBSAN_OPTIONS; }
