// The op vocabulary. Each family is declared once, in its own header; each is implemented per
// backend (ops/cpu/<family>.cpp, ops/cuda/<family>.cu) and dispatched on the inputs' device in
// ops/<family>.cpp. The CPU backend is the reference every other backend is tested against.
//
// Conventions shared by every op:
//  - inputs are contiguous tensors (x2v tensors always are) on one device;
//  - the CPU backend computes in f32 and accepts f32 inputs (weights are converted at load);
//    device backends also accept bf16/f16 and state their accumulation and output dtypes;
//  - a bad shape is an ErrorKind::InvalidArgument naming the op and the shapes it got.
#pragma once

#include "ops/attention.h"
#include "ops/conv.h"
#include "ops/elementwise.h"
#include "ops/layout.h"
#include "ops/linear.h"
#include "ops/norm.h"
#include "ops/resize.h"
#include "ops/rope.h"
