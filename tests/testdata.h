// Where the shared fixtures live: $CORRAL_TESTDATA, else ../shared/testdata beside the checkout.
#pragma once

#include <string>

namespace corral::testing {

// Absolute path of a fixture (relative to the testdata folder). Fails the calling test with a
// clear message, naming the path, when the file is missing.
std::string testdata_path(const std::string& relative);
std::string testdata_dir();

}  // namespace corral::testing
