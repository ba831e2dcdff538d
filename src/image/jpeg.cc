// JPEG pixels through libjpeg-turbo, the library PIL decodes JPEG with, set up as PIL's decoder
// is (accurate integer IDCT, fancy upsampling, YCbCr to RGB by the library): the pixels are the
// ones transformers' reference saw. stb_image's decoder differs from it by up to 3 levels on a
// few percent of the values.
// clang-format off
#include <cstddef>
#include <cstdio>
#include <jpeglib.h>  // needs size_t and FILE declared first
// clang-format on

#include <csetjmp>
#include <string>

#include "image/jpeg.h"

namespace corral::image {
namespace {

// Progressive files may hold many scans, each a pass over the whole image: a file made of
// thousands of tiny scans would take minutes. PIL's libjpeg-turbo does not stop them; real
// encoders write about ten.
constexpr int kMaxScans = 256;

struct ErrorManager {
  jpeg_error_mgr pub;
  jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

void on_error(j_common_ptr cinfo) {
  auto* err = reinterpret_cast<ErrorManager*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, err->message);
  std::longjmp(err->jump, 1);
}

void on_message(j_common_ptr, int) {}  // warnings (corrupt data recovered) are not errors

void on_progress(j_common_ptr common) {
  if (!common->is_decompressor) return;
  auto* cinfo = reinterpret_cast<j_decompress_ptr>(common);
  if (cinfo->input_scan_number > kMaxScans) {
    auto* err = reinterpret_cast<ErrorManager*>(common->err);
    std::snprintf(err->message, sizeof err->message, "more than %d progressive scans", kMaxScans);
    std::longjmp(err->jump, 1);
  }
}

// The libjpeg calls, with nothing between setjmp and longjmp that needs destroying. Returns
// false with `err.message` set on failure.
bool run(const uint8_t* data, size_t size, uint8_t* out, int64_t width, int64_t height,
         ErrorManager& err) {
  jpeg_decompress_struct cinfo;
  jpeg_progress_mgr progress;
  cinfo.err = jpeg_std_error(&err.pub);
  err.pub.error_exit = on_error;
  err.pub.emit_message = on_message;
  err.message[0] = '\0';
  if (setjmp(err.jump)) {
    jpeg_destroy_decompress(&cinfo);
    return false;
  }
  jpeg_create_decompress(&cinfo);
  progress.progress_monitor = on_progress;
  cinfo.progress = &progress;
  jpeg_mem_src(&cinfo, data, static_cast<unsigned long>(size));
  jpeg_read_header(&cinfo, TRUE);
  if (cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK) {
    std::snprintf(err.message, sizeof err.message, "CMYK images are not supported");
    jpeg_destroy_decompress(&cinfo);
    return false;
  }
  if (int64_t{cinfo.image_width} != width || int64_t{cinfo.image_height} != height) {
    std::snprintf(err.message, sizeof err.message, "inconsistent frame headers");
    jpeg_destroy_decompress(&cinfo);
    return false;
  }
  cinfo.out_color_space = JCS_RGB;
  cinfo.dct_method = JDCT_ISLOW;
  cinfo.do_fancy_upsampling = TRUE;
  jpeg_start_decompress(&cinfo);
  if (cinfo.output_components != 3) {
    std::snprintf(err.message, sizeof err.message, "cannot convert its colours to RGB");
    jpeg_destroy_decompress(&cinfo);
    return false;
  }
  while (cinfo.output_scanline < cinfo.output_height) {
    JSAMPROW row = out + size_t(cinfo.output_scanline) * size_t(width) * 3;
    jpeg_read_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_decompress(&cinfo);
  jpeg_destroy_decompress(&cinfo);
  return true;
}

}  // namespace

Image decode_jpeg(std::span<const uint8_t> bytes, int64_t width, int64_t height) {
  Image image;
  image.width = width;
  image.height = height;
  image.rgb.resize(size_t(width) * size_t(height) * 3);
  ErrorManager err;
  if (!run(bytes.data(), bytes.size(), image.rgb.data(), width, height, err)) {
    throw Error(std::string("cannot decode JPEG: ") + err.message);
  }
  return image;
}

}  // namespace corral::image
