# Sources of core's tokenizers (SentencePiece tokenizer.model and Hugging Face byte-level BPE
# tokenizer.json, both re-implemented; see include/quarry/tokenizer.h).
# Included by core/CMakeLists.txt; paths are relative to core/.
set(QUARRY_TOKENIZER_SOURCES
  src/tokenizer/added_tokens.cc
  src/tokenizer/hf_tokenizer.cc
  src/tokenizer/pretokenizer_regex.cc
  src/tokenizer/protobuf_wire.cc
  src/tokenizer/sentencepiece_model.cc
  src/tokenizer/sentencepiece_processor.cc
  src/tokenizer/sentencepiece_tokenizer.cc
  src/tokenizer/tokenizer.cc
  src/tokenizer/unicode.cc
)
