// What the CLI says and leaves when it works through a server: a failed create names the user's
// own FROM paths (never the server's scratch folder), "model not found" names the server that
// was asked and its store, and an upload cut short leaves nothing in the server's store.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "cli/serve_process.h"
#include "store/digest.h"
#include "store/temp_store.h"
#include "testdata.h"

namespace corral::testing {
namespace {

namespace fs = std::filesystem;

// The "Error: ..." line of a command's output.
std::string error_line(const std::string& out) {
  const size_t at = out.find("Error: ");
  if (at == std::string::npos) return "";
  return out.substr(at, out.find('\n', at) - at);
}

// A safetensors folder whose config.json is fine and whose weights are broken, then missing:
// through the server the error is the local one, word for word, naming the user's folder.
TEST(CliThroughServe, CreateErrorsNameTheUsersFolderNotTheServersScratch) {
  TempDir server_store, local_store, work;
  ServeProcess serve(server_store.path());
  ASSERT_TRUE(wait_for_server(serve.host(), std::chrono::seconds(20)));
  const fs::path folder = work.path() / "broken";
  fs::create_directories(folder);
  fs::copy_file(testdata_path("reference/stories260K/config.json"), folder / "config.json");
  write_text(folder / "model.safetensors", "{\"x\":");
  write_text(work.path() / "Modelfile", "FROM ./broken\n");
  // The variables go after the cd, on the command they are for.
  const std::string create = "cd '" + work.str() + "' && ";
  const std::string corral_create = "'" + std::string(CORRAL_BINARY) + "' create m";
  const std::string remote_env = "CORRAL_NO_SERVER= CORRAL_HOST=" + serve.host() + " ";
  const std::string local_env = "CORRAL_NO_SERVER=1 CORRAL_MODELS='" + local_store.str() + "' ";

  for (const bool weights_present : {true, false}) {
    if (!weights_present) fs::remove(folder / "model.safetensors");
    const Result remote = shell(create + remote_env + corral_create);
    const Result local = shell(create + local_env + corral_create);
    EXPECT_EQ(remote.exit_code, 1) << remote.out;
    EXPECT_TRUE(contains(remote.out, "uploading sha256:")) << remote.out;  // through the server
    EXPECT_EQ(local.exit_code, 1) << local.out;
    const std::string said = error_line(remote.out);
    EXPECT_EQ(said, error_line(local.out)) << remote.out << "\n---\n" << local.out;
    EXPECT_TRUE(contains(said, folder.string())) << said;
    EXPECT_FALSE(contains(said, server_store.str())) << said;
    EXPECT_FALSE(contains(said, "work-")) << said;
    EXPECT_FALSE(contains(said, "<upload>")) << said;
    if (weights_present) {
      EXPECT_TRUE(contains(said, (folder / "model.safetensors").string())) << said;
    } else {
      EXPECT_TRUE(contains(said, "FROM " + folder.string() + ": no safetensors model")) << said;
    }
    // The failed create kept none of the files uploaded for it.
    EXPECT_EQ(files_under(server_store.path() / "blobs"), std::vector<std::string>{});
  }
}

// A safetensors folder converted by the server is the model a local create makes, byte for byte
// (the server converts the uploaded files in a folder of the client's folder's name, after which
// the converter names the model).
TEST(CliThroughServe, AFolderMakesTheSameModelWithAndWithoutAServer) {
  TempDir server_store, local_store, work;
  ServeProcess serve(server_store.path());
  ASSERT_TRUE(wait_for_server(serve.host(), std::chrono::seconds(20)));
  write_text(work.path() / "Modelfile", "FROM " + testdata_path("reference/stories260K") + "\n");
  const std::string create = "cd '" + work.str() + "' && ";
  const std::string corral_create = " '" + std::string(CORRAL_BINARY) + "' create m";
  ASSERT_EQ(
      shell(create + "CORRAL_NO_SERVER= CORRAL_HOST=" + serve.host() + corral_create).exit_code, 0);
  ASSERT_EQ(
      shell(create + "CORRAL_NO_SERVER=1 CORRAL_MODELS='" + local_store.str() + "'" + corral_create)
          .exit_code,
      0);
  const std::vector<std::string> remote_blobs = files_under(server_store.path() / "blobs");
  const std::vector<std::string> local_blobs = files_under(local_store.path() / "blobs");
  // The server also keeps the uploaded files (blobs of their own); the model's blobs are the same.
  for (const std::string& blob : local_blobs) {
    EXPECT_NE(std::find(remote_blobs.begin(), remote_blobs.end(), blob), remote_blobs.end())
        << blob << " made locally, not by the server";
  }
  const std::string show = "'" + std::string(CORRAL_BINARY) + "' show m -v";
  EXPECT_EQ(shell("CORRAL_NO_SERVER= CORRAL_HOST=" + serve.host() + " " + show).out,
            shell("CORRAL_NO_SERVER=1 CORRAL_MODELS='" + local_store.str() + "' " + show).out);
}

// A server started with another store: "not found" says which server was asked, its store, and
// that this shell's store is another; with the same store, only the server and its store.
TEST(CliThroughServe, NotFoundNamesTheServerAndItsStore) {
  TempDir server_store, my_store;
  ServeProcess serve(server_store.path());
  ASSERT_TRUE(wait_for_server(serve.host(), std::chrono::seconds(20)));
  const std::string env = "CORRAL_NO_SERVER= CORRAL_HOST=" + serve.host() + " CORRAL_MODELS='" +
                          my_store.str() + "' '" + CORRAL_BINARY + "' ";
  const std::string asked = "model 'x' not found (asked the corral server at " + serve.host() +
                            ", whose store is " + server_store.str() + ", not this shell's " +
                            my_store.str() + "; CORRAL_NO_SERVER=1 uses " + my_store.str() + ")";
  for (const char* command : {"show x", "rm x", "cp x y", "stop x", "push x"}) {
    const Result r = shell(env + command);
    EXPECT_EQ(r.exit_code, 1) << command << ": " << r.out;
    EXPECT_EQ(error_line(r.out), "Error: " + asked) << command;
  }
  // `corral run` pulls a model the server lacks (from a closed port here); its error then says
  // that the server's store is not this shell's.
  const Result run = shell(env + "run x hi");
  EXPECT_EQ(run.exit_code, 1) << run.out;
  EXPECT_TRUE(error_line(run.out).ends_with("; " + asked)) << run.out;

  const Result same = shell("CORRAL_NO_SERVER= CORRAL_HOST=" + serve.host() + " CORRAL_MODELS='" +
                            server_store.str() + "' '" + CORRAL_BINARY + "' show x");
  EXPECT_EQ(error_line(same.out), "Error: model 'x' not found (asked the corral server at " +
                                      serve.host() + ", whose store is " + server_store.str() +
                                      ")");
}

// A client that sends half of a blob's bytes and closes its socket: the server drops the partial
// file; the store holds no blob and no scratch file, and the next upload of that blob works.
TEST(CliThroughServe, AnUploadCutShortLeavesNothingInTheStore) {
  TempDir store_dir;
  ServeProcess serve(store_dir.path());
  ASSERT_TRUE(wait_for_server(serve.host(), std::chrono::seconds(20)));
  const std::string body = read_text(testdata_path("tinystories260k/stories260K-f32.gguf"));
  const std::string digest = store::sha256_digest(body);
  const int port = std::stoi(serve.host().substr(serve.host().rfind(':') + 1));

  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  const std::string head = "POST /api/blobs/" + digest +
                           " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
                           "application/octet-stream\r\nContent-Length: " +
                           std::to_string(body.size()) + "\r\n\r\n";
  const std::string sent = head + body.substr(0, body.size() / 2);
  ASSERT_EQ(send(fd, sent.data(), sent.size(), MSG_NOSIGNAL), static_cast<ssize_t>(sent.size()));
  // The server is writing the upload to a scratch file (so the cut comes mid-upload)...
  const fs::path tmp = store_dir.path() / "tmp";
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  bool writing = false;
  while (!writing && std::chrono::steady_clock::now() < deadline) {
    for (const std::string& f : files_under(tmp)) writing = writing || f.ends_with("/upload");
    if (!writing) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  close(fd);
  ASSERT_TRUE(writing) << "the server never started writing the upload";
  // ...and removes it once the connection is gone.
  std::vector<std::string> left = files_under(store_dir.path() / "tmp");
  while (!left.empty() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    left = files_under(store_dir.path() / "tmp");
  }
  EXPECT_EQ(left, std::vector<std::string>{});
  EXPECT_EQ(files_under(store_dir.path() / "blobs"), std::vector<std::string>{});
  EXPECT_EQ(files_under(store_dir.path() / "manifests"), std::vector<std::string>{});

  cli::Client client(cli::parse_host(serve.host()));
  EXPECT_FALSE(client.has_blob(digest));
  client.upload_blob(testdata_path("tinystories260k/stories260K-f32.gguf"), digest);
  EXPECT_TRUE(client.has_blob(digest));
}

}  // namespace
}  // namespace corral::testing
