#!/bin/sh
# tests/mutation_test.sh — a test of the tests: each mutation below makes an
# operator wrong in a way the oracle cannot see (the oracle evaluates the
# same definition), is applied to a copy of the sources, and test_ops must
# then fail. A mutation whose text no longer matches its file fails too, so
# this script cannot pass by going stale.
set -eu
src=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/kiln-mutants-XXXXXX)
trap 'rm -rf "$work"' EXIT
tar -C "$src" --exclude=./.git --exclude='./build*' --exclude=./node_modules --exclude=./.dev \
	--exclude=./benchmarks/web/node_modules -cf - . | tar -C "$work" -xf -
meson setup "$work/b" "$work" >/dev/null
ninja -C "$work/b" tests/test_ops >/dev/null
if ! CK_FORK=yes "$work/b/tests/test_ops" >"$work/log" 2>&1; then
	cat "$work/log" >&2
	echo "mutation_test: test_ops fails on the unmutated sources" >&2
	exit 1
fi

# file | what | sed expression (must change the file)
mutants='ops/elementwise.c|gelu: 1/sqrt(2) becomes 0.6|s/kiln_const(ctx, t, M_SQRT1_2)/kiln_const(ctx, t, 0.6)/
ops/nn.c|conv2d: the top padding shifted by one row|s/kiln_const(ctx, KILN_I64, (double)c->pt))/kiln_const(ctx, KILN_I64, (double)(c->pt + 1)))/
ops/nn.c|avg_pool2d: count_include_pad ignored|s/if (p->p.count_include_pad)/if (0 \&\& p->p.count_include_pad)/
ops/nn.c|layer_norm and batch_norm: eps dropped|s/kiln_const(ctx, r->X->type, r->eps)/kiln_const(ctx, r->X->type, 0.0)/'

echo "$mutants" | while IFS='|' read -r file what expr; do
	cp "$work/$file" "$work/orig"
	sed "$expr" "$work/orig" >"$work/$file"
	if cmp -s "$work/orig" "$work/$file"; then
		echo "mutation_test: '$what' no longer applies to $file" >&2
		exit 1
	fi
	ninja -C "$work/b" tests/test_ops >/dev/null
	if CK_FORK=yes "$work/b/tests/test_ops" >"$work/log" 2>&1; then
		echo "mutation_test: SURVIVED: $what (test_ops passed with it)" >&2
		exit 1
	fi
	echo "killed: $what ($(grep -c ':F:' "$work/log") failing checks)"
	cp "$work/orig" "$work/$file"
done
echo "mutation_test: every mutation was caught"
