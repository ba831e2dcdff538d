#include "testdata.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>

namespace corral::testing {

std::string testdata_dir() {
  if (const char* env = std::getenv("CORRAL_TESTDATA"); env && *env) return env;
  return std::string(CORRAL_SOURCE_DIR) + "/../shared/testdata";
}

std::string testdata_path(const std::string& relative) {
  const std::string path = testdata_dir() + "/" + relative;
  if (!std::filesystem::exists(path)) {
    ADD_FAILURE() << "test fixture missing: " << path
                  << " (set CORRAL_TESTDATA to the shared/testdata folder)";
  }
  return path;
}

}  // namespace corral::testing
