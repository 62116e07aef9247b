// LLaMA's real tokenizer for the tests that check against it: LLAMA_TOKENIZER=PATH, else
// ../shared/data/llama-tokenizer.model beside the source tree. A test that needs it fails
// (never skips) when it is missing: a skipped check would hide a broken feature.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <string>

namespace pajama::testing {

inline std::filesystem::path llama_tokenizer_path() {
  if (const char* v = std::getenv("LLAMA_TOKENIZER"); v != nullptr && *v != '\0') return v;
  const char* src = std::getenv("PAJAMA_SOURCE_DIR");
  return std::filesystem::path(src != nullptr ? src : ".") / ".." / "shared" / "data" / "llama-tokenizer.model";
}

inline std::string llama_tokenizer_missing() {
  return "needs LLaMA's tokenizer at " + llama_tokenizer_path().string() +
         " (llama-tokenizer.model, 499,723 bytes, md5 eeec4125e9c7560836b4873b6f8e3025, as in karpathy/llama2.c; "
         "it comes with the released LLaMA weights and is not in the repository): set LLAMA_TOKENIZER=PATH";
}

}  // namespace pajama::testing

#define PAJAMA_REQUIRE_LLAMA_TOKENIZER() \
  ASSERT_TRUE(std::filesystem::exists(::pajama::testing::llama_tokenizer_path())) << ::pajama::testing::llama_tokenizer_missing()
