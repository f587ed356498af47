/* test_schedule_ir.h — the exact IR each schedule primitive lowers to, and the LLVM IR of one small kernel (pinned). */

#define IR_SPLIT \
	"func f(A: float32[6, 10], C: float32[6, 10]) {\n" \
	"  for (i, 0, 6) {\n" \
	"    for (j.outer, 0, 3) {\n" \
	"      for (j.inner, 0, 4) {\n" \
	"        C[i*10 + min(j.outer*4, 6) + j.inner] = A[i*10 + min(j.outer*4, 6) + j.inner]*2f + 1f\n" \
	"      }\n" \
	"    }\n" \
	"  }\n" \
	"}\n"

#define IR_SPLIT_REDUCE \
	"func f(A: float32[4, 10], B: float32[4]) {\n" \
	"  for (i, 0, 4) {\n" \
	"    B[i] = 0f\n" \
	"    for (k.outer, 0, 3) {\n" \
	"      for (k.inner, 0, 4) {\n" \
	"        if (k.outer*4 + k.inner < 10) {\n" \
	"          B[i] = B[i] + A[i*10 + k.outer*4 + k.inner]\n" \
	"        }\n" \
	"      }\n" \
	"    }\n" \
	"  }\n" \
	"}\n"

#define IR_SPLIT_NPARTS \
	"func f(A: float32[4, 12], B: float32[4]) {\n" \
	"  for (i, 0, 4) {\n" \
	"    B[i] = 0f\n" \
	"    for (k.outer, 0, 3) {\n" \
	"      for (k.inner, 0, 4) {\n" \
	"        B[i] = B[i] + A[i*12 + k.outer*4 + k.inner]\n" \
	"      }\n" \
	"    }\n" \
	"  }\n" \
	"}\n"

#define IR_REORDER \
	"func f(A: float32[3, 5], C: float32[3, 5]) {\n" \
	"  for (j, 0, 5) {\n" \
	"    for (i, 0, 3) {\n" \
	"      C[i*5 + j] = A[i*5 + j]*2f + 1f\n" \
	"    }\n" \
	"  }\n" \
	"}\n"

#define IR_FUSE \
	"func f(A: float32[3, 5], C: float32[3, 5]) {\n" \
	"  parallel (j.i.fused, 0, 15) {\n" \
	"    C[j.i.fused % 3*5 + j.i.fused/3] = A[j.i.fused % 3*5 + j.i.fused/3]*2f + 1f\n" \
	"  }\n" \
	"}\n"

#define IR_TILE \
	"func f(A: float32[4, 32], C: float32[4, 32]) {\n" \
	"  for (i.outer, 0, 2) {\n" \
	"    for (j.outer, 0, 2) {\n" \
	"      C[ramp(i.outer*64 + j.outer*16, 1, 16)] = A[ramp(i.outer*64 + j.outer*16, 1, 16)]*x16(2f) + x16(1f)\n" \
	"      C[ramp(i.outer*64 + j.outer*16 + 32, 1, 16)] = A[ramp(i.outer*64 + j.outer*16 + 32, 1, 16)]*x16(2f) + x16(1f)\n" \
	"    }\n" \
	"  }\n" \
	"}\n"

#define IR_ROOT \
	"func f(A: float32[4, 6], C: float32[4, 6]) {\n" \
	"  allocate B[float32 * 24] in global {\n" \
	"    for (i, 0, 4) {\n" \
	"      for (j, 0, 6) {\n" \
	"        B[i*6 + j] = A[i*6 + j]*2f\n" \
	"      }\n" \
	"    }\n" \
	"    for (i, 0, 4) {\n" \
	"      for (j, 0, 6) {\n" \
	"        C[i*6 + j] = B[i*6 + j] + 1f\n" \
	"      }\n" \
	"    }\n" \
	"  }\n" \
	"}\n"

#define IR_AT \
	"func f(A: float32[4, 6], C: float32[4, 6]) {\n" \
	"  for (i, 0, 4) {\n" \
	"    allocate B[float32 * 6] in global {\n" \
	"      for (j, 0, 6) {\n" \
	"        B[j] = A[i*6 + j]*2f\n" \
	"      }\n" \
	"      for (j, 0, 6) {\n" \
	"        C[i*6 + j] = B[j] + 1f\n" \
	"      }\n" \
	"    }\n" \
	"  }\n" \
	"}\n"

#define IR_INLINE \
	"func f(A: float32[4, 6], C: float32[4, 6]) {\n" \
	"  for (i, 0, 4) {\n" \
	"    for (j, 0, 6) {\n" \
	"      C[i*6 + j] = A[i*6 + j]*2f + 1f\n" \
	"    }\n" \
	"  }\n" \
	"}\n"

#define IR_CACHE_READ \
	"func f(A: float32[3, 8], B: float32[3]) {\n" \
	"  for (i, 0, 3) {\n" \
	"    allocate A.local[float32 * 8] in local {\n" \
	"      for (j, 0, 8) {\n" \
	"        A.local[j] = A[i*8 + j]\n" \
	"      }\n" \
	"      B[i] = 0f\n" \
	"      for (k, 0, 8) {\n" \
	"        B[i] = B[i] + A.local[k]\n" \
	"      }\n" \
	"    }\n" \
	"  }\n" \
	"}\n"

#define IR_CACHE_WRITE \
	"func f(A: float32[3, 8], B: float32[3]) {\n" \
	"  for (i, 0, 3) {\n" \
	"    allocate B.local[float32 * 1] in local {\n" \
	"      B.local[0] = 0f\n" \
	"      for (k, 0, 8) {\n" \
	"        B.local[0] = B.local[0] + A[i*8 + k]\n" \
	"      }\n" \
	"      B[i] = B.local[0]\n" \
	"    }\n" \
	"  }\n" \
	"}\n"

#define IR_RFACTOR \
	"func f(A: float32[2, 64], B: float32[2]) {\n" \
	"  allocate B.rf[float32 * 32] in global {\n" \
	"    for (i, 0, 2) {\n" \
	"      B.rf[ramp(i, 2, 16)] = x16(0f)\n" \
	"      for (k.outer, 0, 4) {\n" \
	"        B.rf[ramp(i, 2, 16)] = B.rf[ramp(i, 2, 16)] + A[ramp(i*64 + k.outer*16, 1, 16)]\n" \
	"      }\n" \
	"    }\n" \
	"    for (i, 0, 2) {\n" \
	"      B[i] = 0f\n" \
	"      for (k.inner.v, 0, 16) {\n" \
	"        B[i] = B[i] + B.rf[k.inner.v*2 + i]\n" \
	"      }\n" \
	"    }\n" \
	"  }\n" \
	"}\n"

#define IR_BIND \
	"func f(A: float32[4, 64], C: float32[4, 64]) {\n" \
	"  bind (i, 0, 4, blockIdx.x) {\n" \
	"    bind (j, 0, 64, threadIdx.x) {\n" \
	"      C[i*64 + j] = A[i*64 + j]*2f + 1f\n" \
	"    }\n" \
	"  }\n" \
	"}\n"

#define IR_LLVM \
	"; ModuleID = 'kiln'\n" \
	"source_filename = \"kiln\"\n" \
	"\n" \
	"; Function Attrs: nounwind\n" \
	"define i32 @f(ptr noalias %A, ptr noalias %C) #0 {\n" \
	"entry:\n" \
	"  br label %loop\n" \
	"\n" \
	"loop:                                             ; preds = %body, %entry\n" \
	"  %i = phi i64 [ 0, %entry ], [ %8, %body ]\n" \
	"  %0 = icmp slt i64 %i, 2\n" \
	"  br i1 %0, label %body, label %done\n" \
	"\n" \
	"body:                                             ; preds = %loop\n" \
	"  %1 = mul i64 %i, 16\n" \
	"  %2 = getelementptr float, ptr %A, i64 %1\n" \
	"  %3 = load <16 x float>, ptr %2, align 4\n" \
	"  %4 = fmul contract <16 x float> %3, <float 2.000000e+00, float 2.000000e+00, float 2.000000e+00, float 2.000000e+00, float 2.000000e+00, float 2.000000e+00, float 2.000000e+00, float 2.000000e+00, float 2.000000e+00, float 2.000000e+00, float 2.000000e+00, float 2.000000e+00, float 2.000000e+00, float 2.000000e+00, float 2.000000e+00, float 2.000000e+00>\n" \
	"  %5 = fadd contract <16 x float> %4, <float 1.000000e+00, float 1.000000e+00, float 1.000000e+00, float 1.000000e+00, float 1.000000e+00, float 1.000000e+00, float 1.000000e+00, float 1.000000e+00, float 1.000000e+00, float 1.000000e+00, float 1.000000e+00, float 1.000000e+00, float 1.000000e+00, float 1.000000e+00, float 1.000000e+00, float 1.000000e+00>\n" \
	"  %6 = mul i64 %i, 16\n" \
	"  %7 = getelementptr float, ptr %C, i64 %6\n" \
	"  store <16 x float> %5, ptr %7, align 4\n" \
	"  %8 = add i64 %i, 1\n" \
	"  br label %loop\n" \
	"\n" \
	"done:                                             ; preds = %loop\n" \
	"  ret i32 0\n" \
	"}\n" \
	"\n"

#define IR_STORAGE_ORDER \
	"func f(A: float32[3, 5], C: float32[3, 5]) {\n" \
	"  allocate B[float32 * 15] in global {\n" \
	"    for (i, 0, 3) {\n" \
	"      for (j, 0, 5) {\n" \
	"        B[j*3 + i] = A[i*5 + j]*2f\n" \
	"      }\n" \
	"    }\n" \
	"    for (i, 0, 3) {\n" \
	"      for (j, 0, 5) {\n" \
	"        C[i*5 + j] = B[j*3 + i] + 1f\n" \
	"      }\n" \
	"    }\n" \
	"  }\n" \
	"}\n"

#define IR_VTHREAD \
	"func f(A: float32[3, 8], C: float32[3, 8]) {\n" \
	"  for (i, 0, 3) {\n" \
	"    allocate B[float32 * 8] in local {\n" \
	"      for (j, 0, 4) {\n" \
	"        B[j] = A[i*8 + j]*2f\n" \
	"        B[j + 4] = A[i*8 + j + 4]*2f\n" \
	"      }\n" \
	"      for (j.inner, 0, 4) {\n" \
	"        C[i*8 + j.inner] = B[j.inner] + 1f\n" \
	"        C[i*8 + j.inner + 4] = B[j.inner + 4] + 1f\n" \
	"      }\n" \
	"    }\n" \
	"  }\n" \
	"}\n"
