#!/bin/sh
# tests/te_test.sh KILN — the .kte files of tests/te: each NAME.kte must lower
# (llvm) to exactly NAME.ir and run within the oracle's tolerance; each
# err_NAME.kte must fail with exactly err_NAME.err on stderr (exit status 1,
# never a crash). Set KILN_TE_UPDATE=1 to rewrite the expected files.
set -u
kiln=$(realpath "$1")
cd "$(dirname "$0")/te"
status=0
final_ir() { # the IR after the last pass
	awk '/^\/\/ ---- after simplify ----/{buf=""; next} /^\/\/ ----/{buf=""; next} {buf = buf $0 "\n"} END{printf "%s", buf}'
}
for f in *.kte; do
	name=${f%.kte}
	case $name in
	err_*)
		"$kiln" lower "$f" >/dev/null 2>/tmp/kiln-te-$$.err
		rc=$?
		if [ "${KILN_TE_UPDATE:-}" = 1 ]; then cp /tmp/kiln-te-$$.err "$name.err"; fi
		if [ $rc -ne 1 ]; then
			echo "FAIL $f: exit status $rc, want 1"; status=1
		elif ! diff -u "$name.err" /tmp/kiln-te-$$.err; then
			echo "FAIL $f: the message differs"; status=1
		else
			echo "ok   $f"
		fi
		;;
	*)
		"$kiln" lower "$f" 2>&1 | final_ir >/tmp/kiln-te-$$.ir
		if [ "${KILN_TE_UPDATE:-}" = 1 ]; then cp /tmp/kiln-te-$$.ir "$name.ir"; fi
		if ! diff -u "$name.ir" /tmp/kiln-te-$$.ir; then
			echo "FAIL $f: the lowered IR differs"; status=1
		elif ! "$kiln" run "$f" >/tmp/kiln-te-$$.run 2>&1; then
			cat /tmp/kiln-te-$$.run; echo "FAIL $f: does not run within tolerance"; status=1
		else
			echo "ok   $f ($(cat /tmp/kiln-te-$$.run))"
		fi
		;;
	esac
done
# a .kte op builds a shared library and a web bundle named after the op
lib=/tmp/kiln-te-$$.so
web=/tmp/kiln-te-$$-web/
kte=../../examples/te/swish_rowsum.kte
if ! "$kiln" build $kte -o "$lib" >/dev/null || ! "$kiln" build $kte --target wasm,webgl -o "$web" >/dev/null ||
	! [ -f "$web/swish_rowsum.wasm.kmod" ] || ! [ -f "$web/swish_rowsum.webgl.kmod" ]; then
	echo "FAIL swish_rowsum.kte: no library or bundle"; status=1
else
	echo "ok   swish_rowsum.kte builds a library and a bundle"
fi
rm -rf "$web" "$lib" /tmp/kiln-te-$$.*
exit $status
