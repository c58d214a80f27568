;; SIMD merge kernels (WebAssembly 128-bit SIMD): the hot loops of the two-model merges, the
;; TIES trim planner's passes and the finiteness check, over float32 tensors that live in the
;; imported memory. Assembled into merge-simd.wasm.ts by `npm run build:wasm`
;; (scripts/build-wasm.mjs); simd.ts loads it.
;;
;; Every merge kernel computes exactly the float64 expressions of its JavaScript counterpart in
;; methods.ts (named beside it), in the same order, in f64x2 lanes, and rounds once to float32:
;; the outputs are bit for bit the same (test/unit/upit/merge-kernels.test.ts). Pointers are byte
;; offsets into the memory; n is a count of elements. The element-wise kernels take four elements
;; a step and handle n rounded down to a multiple of 4; the caller does the last few.
;;
;; What V8 makes of these loops decides their speed (about 3 vector instructions a cycle on the
;; 2-core VM this was tuned on), so they are written for its code generator: loads, stores and
;; mask reads are written out in each loop, not called (V8 does not inline WebAssembly calls);
;; constants come from memory (a v128.const inside a loop is rematerialized at every use); a
;; choice made once per call (how a TIES value is finished) picks one of several loops rather
;; than branching inside one (the branch cost registers and spills); floats are widened straight
;; from memory, two at a time (f64x2.promote_low_f32x4 of a v128.load64_zero is one cvtps2pd).
;;
;; Masks: bit (t & 31) of 32-bit word (t >> 5) keeps element t (t counted from the kernel's start),
;; as MaskStream and TrimStream pack them.
(module
  (import "env" "memory" (memory 1))

  ;; Index of the first float32 in p[0..n) that is NaN or ±Inf (exponent bits all ones), else -1.
  (func (export "nonfinite") (param $p i32) (param $n i32) (result i32)
    (local $i i32) (local $end i32) (local $a i32)
    (local.set $end (i32.and (local.get $n) (i32.const -16)))
    ;; sixteen at a time: any lane with all exponent bits set stops the fast scan
    (block $scan
      (loop $l
        (br_if $scan (i32.ge_u (local.get $i) (local.get $end)))
        (local.set $a (i32.add (local.get $p) (i32.shl (local.get $i) (i32.const 2))))
        (br_if $scan
          (v128.any_true
            (v128.or
              (v128.or
                (i32x4.eq (v128.and (v128.load (local.get $a)) (v128.const i32x4 0x7f800000 0x7f800000 0x7f800000 0x7f800000))
                          (v128.const i32x4 0x7f800000 0x7f800000 0x7f800000 0x7f800000))
                (i32x4.eq (v128.and (v128.load offset=16 (local.get $a)) (v128.const i32x4 0x7f800000 0x7f800000 0x7f800000 0x7f800000))
                          (v128.const i32x4 0x7f800000 0x7f800000 0x7f800000 0x7f800000)))
              (v128.or
                (i32x4.eq (v128.and (v128.load offset=32 (local.get $a)) (v128.const i32x4 0x7f800000 0x7f800000 0x7f800000 0x7f800000))
                          (v128.const i32x4 0x7f800000 0x7f800000 0x7f800000 0x7f800000))
                (i32x4.eq (v128.and (v128.load offset=48 (local.get $a)) (v128.const i32x4 0x7f800000 0x7f800000 0x7f800000 0x7f800000))
                          (v128.const i32x4 0x7f800000 0x7f800000 0x7f800000 0x7f800000))))))
        (local.set $i (i32.add (local.get $i) (i32.const 16)))
        (br $l)))
    ;; one at a time from the group that stopped the scan (or the tail)
    (block $none
      (loop $l
        (br_if $none (i32.ge_u (local.get $i) (local.get $n)))
        (if (i32.eq
              (i32.and (i32.load (i32.add (local.get $p) (i32.shl (local.get $i) (i32.const 2)))) (i32.const 0x7f800000))
              (i32.const 0x7f800000))
          (then (return (local.get $i))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $l)))
    (i32.const -1))

  ;; Four elements per step: one v128.load of four float32 per input, widened to two f64x2 halves
  ;; (lo: elements 0, 1; hi: 2, 3); the two halves rounded back and stored as one v128.

  ;; linearPair: out = (c0·x0 + c1·x1)·inv.
  (func (export "linear2")
    (param $x0 i32) (param $x1 i32) (param $out i32) (param $n i32)
    (param $c0 f64) (param $c1 f64) (param $inv f64)
    (local $o i32) (local $end i32) (local $a v128) (local $b v128)
    (local $vc0 v128) (local $vc1 v128) (local $vinv v128)
    (local.set $vc0 (f64x2.splat (local.get $c0)))
    (local.set $vc1 (f64x2.splat (local.get $c1)))
    (local.set $vinv (f64x2.splat (local.get $inv)))
    (local.set $end (i32.shl (i32.and (local.get $n) (i32.const -4)) (i32.const 2)))
    (block $done
      (loop $l
        (br_if $done (i32.ge_u (local.get $o) (local.get $end)))
        (local.set $a (v128.load (i32.add (local.get $x0) (local.get $o))))
        (local.set $b (v128.load (i32.add (local.get $x1) (local.get $o))))
        (v128.store (i32.add (local.get $out) (local.get $o))
          (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23
            (f32x4.demote_f64x2_zero
              (f64x2.mul
                (f64x2.add
                  (f64x2.mul (local.get $vc0) (f64x2.promote_low_f32x4 (local.get $a)))
                  (f64x2.mul (local.get $vc1) (f64x2.promote_low_f32x4 (local.get $b))))
                (local.get $vinv)))
            (f32x4.demote_f64x2_zero
              (f64x2.mul
                (f64x2.add
                  (f64x2.mul (local.get $vc0)
                    (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 8 9 10 11 12 13 14 15 (local.get $a) (local.get $a))))
                  (f64x2.mul (local.get $vc1)
                    (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 8 9 10 11 12 13 14 15 (local.get $b) (local.get $b)))))
                (local.get $vinv)))))
        (local.set $o (i32.add (local.get $o) (i32.const 16)))
        (br $l))))

  ;; ---- scratch the kernels share (inside the arena's reserved bytes, see simd.ts) ----------
  ;;   16: trimband2's counts (four i32)      64: l1sums2's sums (two f64x2)
  ;;  128: constants (written by simd.ts): i64x2 sign bits, i64x2 0x7fff…, i32x4 0x7fffffff, i64x2 1
  ;;  256: compress table, 16 × 16 bytes: for a 4-bit lane mask m, the i8x16.swizzle that packs
  ;;       the lanes whose bit is set to the front (written by simd.ts when the arena is made)
  ;; 1024: coefficient tables of the two models (16 × 32 bytes each, at 1024 and 1536), see $coefs

  ;; For each 4-bit mask nibble m (keep bits of four consecutive elements) the f64x2 pairs
  ;; [k0·c, k1·c] and [k2·c, k3·c] at tbl + 32·m, k·c being c when the bit is set and 0·c (+0 or
  ;; −0 with c's sign) when not: exactly the scalar kernels' (keep·c).
  (func $coefs (param $tbl i32) (param $c f64)
    (local $m i32) (local $z f64) (local $a i32)
    (local.set $z (f64.mul (f64.const 0) (local.get $c)))
    (loop $l
      (local.set $a (i32.add (local.get $tbl) (i32.shl (local.get $m) (i32.const 5))))
      (f64.store (local.get $a) (select (local.get $c) (local.get $z) (i32.and (local.get $m) (i32.const 1))))
      (f64.store offset=8 (local.get $a) (select (local.get $c) (local.get $z) (i32.and (local.get $m) (i32.const 2))))
      (f64.store offset=16 (local.get $a) (select (local.get $c) (local.get $z) (i32.and (local.get $m) (i32.const 4))))
      (f64.store offset=24 (local.get $a) (select (local.get $c) (local.get $z) (i32.and (local.get $m) (i32.const 8))))
      (local.set $m (i32.add (local.get $m) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $m) (i32.const 16)))))

  ;; The coefficient-table offset (from the table's start) of elements t .. t + 3 of a mask whose
  ;; bit 0 is element 0: 32 × bits t .. t + 3 of word t >> 5 (t a multiple of 4; shr_u takes the
  ;; count mod 32). Used inline below (a call per step costs more than the step).

  ;; Elements below are read two at a time as f64x2 straight from memory:
  ;; f64x2.promote_low_f32x4 (v128.load64_zero p) compiles to one cvtps2pd with a memory operand.

  ;; sumPairDense: out = b + s·(c0·(x0 − b) + c1·(x1 − b)).
  (func (export "sum2")
    (param $x0 i32) (param $x1 i32) (param $b i32) (param $out i32)
    (param $n i32) (param $c0 f64) (param $c1 f64) (param $s f64)
    (local $o i32) (local $end i32) (local $bo v128) (local $r v128)
    (local $vc0 v128) (local $vc1 v128) (local $vs v128)
    (local.set $vc0 (f64x2.splat (local.get $c0)))
    (local.set $vc1 (f64x2.splat (local.get $c1)))
    (local.set $vs (f64x2.splat (local.get $s)))
    (local.set $end (i32.shl (i32.and (local.get $n) (i32.const -4)) (i32.const 2)))
    (block $done
      (loop $l
        (br_if $done (i32.ge_u (local.get $o) (local.get $end)))
        (local.set $bo (f64x2.promote_low_f32x4 (v128.load64_zero (i32.add (local.get $b) (local.get $o)))))
        (local.set $r
          (f64x2.add (local.get $bo)
            (f64x2.mul (local.get $vs)
              (f64x2.add
                (f64x2.mul (local.get $vc0)
                  (f64x2.sub (f64x2.promote_low_f32x4 (v128.load64_zero (i32.add (local.get $x0) (local.get $o)))) (local.get $bo)))
                (f64x2.mul (local.get $vc1)
                  (f64x2.sub (f64x2.promote_low_f32x4 (v128.load64_zero (i32.add (local.get $x1) (local.get $o)))) (local.get $bo)))))))
        (local.set $bo (f64x2.promote_low_f32x4 (v128.load64_zero offset=8 (i32.add (local.get $b) (local.get $o)))))
        (v128.store (i32.add (local.get $out) (local.get $o))
          (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23
            (f32x4.demote_f64x2_zero (local.get $r))
            (f32x4.demote_f64x2_zero
              (f64x2.add (local.get $bo)
                (f64x2.mul (local.get $vs)
                  (f64x2.add
                    (f64x2.mul (local.get $vc0)
                      (f64x2.sub (f64x2.promote_low_f32x4 (v128.load64_zero offset=8 (i32.add (local.get $x0) (local.get $o)))) (local.get $bo)))
                    (f64x2.mul (local.get $vc1)
                      (f64x2.sub (f64x2.promote_low_f32x4 (v128.load64_zero offset=8 (i32.add (local.get $x1) (local.get $o)))) (local.get $bo)))))))))
        (local.set $o (i32.add (local.get $o) (i32.const 16)))
        (br $l))))

  ;; sumPair: out = b + s·((k0·c0)·(x0 − b) + (k1·c1)·(x1 − b)), the (k·c) read from the models'
  ;; coefficient tables by mask nibble (see $coefs).
  (func (export "sum2m")
    (param $k0 i32) (param $k1 i32) (param $x0 i32) (param $x1 i32) (param $b i32) (param $out i32)
    (param $n i32) (param $c0 f64) (param $c1 f64) (param $s f64)
    (local $o i32) (local $t i32) (local $end i32) (local $i0 i32) (local $i1 i32)
    (local $bo v128) (local $r v128) (local $vs v128)
    (call $coefs (i32.const 1024) (local.get $c0))
    (call $coefs (i32.const 1536) (local.get $c1))
    (local.set $vs (f64x2.splat (local.get $s)))
    (local.set $end (i32.shl (i32.and (local.get $n) (i32.const -4)) (i32.const 2)))
    (block $done
      (loop $l
        (br_if $done (i32.ge_u (local.get $o) (local.get $end)))
        (local.set $i0
          (i32.shl (i32.and (i32.shr_u
            (i32.load (i32.add (local.get $k0) (i32.and (i32.shr_u (local.get $t) (i32.const 3)) (i32.const -4))))
            (local.get $t)) (i32.const 15)) (i32.const 5)))
        (local.set $i1
          (i32.shl (i32.and (i32.shr_u
            (i32.load (i32.add (local.get $k1) (i32.and (i32.shr_u (local.get $t) (i32.const 3)) (i32.const -4))))
            (local.get $t)) (i32.const 15)) (i32.const 5)))
        (local.set $bo (f64x2.promote_low_f32x4 (v128.load64_zero (i32.add (local.get $b) (local.get $o)))))
        (local.set $r
          (f64x2.add (local.get $bo)
            (f64x2.mul (local.get $vs)
              (f64x2.add
                (f64x2.mul (v128.load offset=1024 (local.get $i0))
                  (f64x2.sub (f64x2.promote_low_f32x4 (v128.load64_zero (i32.add (local.get $x0) (local.get $o)))) (local.get $bo)))
                (f64x2.mul (v128.load offset=1536 (local.get $i1))
                  (f64x2.sub (f64x2.promote_low_f32x4 (v128.load64_zero (i32.add (local.get $x1) (local.get $o)))) (local.get $bo)))))))
        (local.set $bo (f64x2.promote_low_f32x4 (v128.load64_zero offset=8 (i32.add (local.get $b) (local.get $o)))))
        (v128.store (i32.add (local.get $out) (local.get $o))
          (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23
            (f32x4.demote_f64x2_zero (local.get $r))
            (f32x4.demote_f64x2_zero
              (f64x2.add (local.get $bo)
                (f64x2.mul (local.get $vs)
                  (f64x2.add
                    (f64x2.mul (v128.load offset=1040 (local.get $i0))
                      (f64x2.sub (f64x2.promote_low_f32x4 (v128.load64_zero offset=8 (i32.add (local.get $x0) (local.get $o)))) (local.get $bo)))
                    (f64x2.mul (v128.load offset=1552 (local.get $i1))
                      (f64x2.sub (f64x2.promote_low_f32x4 (v128.load64_zero offset=8 (i32.add (local.get $x1) (local.get $o)))) (local.get $bo)))))))))
        (local.set $o (i32.add (local.get $o) (i32.const 16)))
        (local.set $t (i32.add (local.get $t) (i32.const 4)))
        (br $l))))

  ;; tiesPairFast (ties2m: DARE masks, (k·c) from the coefficient tables) and tiesPairTrimFast
  ;; (ties2t: keep = |δ| > cut, the trim's float64 decision). With τ_i = (keep_i·c_i)·δ_i the
  ;; reference (tiesPairValue) elects sg = sign(τ0 + τ1) and keeps the τ_i that agree; here that is
  ;; u_i = τ_i (masked to +0 when dropped: a zero's sign does not reach the value), p_i = [u_i,
  ;; negated when u0 + u1 has its sign bit set, is > 0] and v = u0·[p0] + u1·[p1], which equals the
  ;; reference's sg·Σ q_i bit for bit (negation commutes with rounding; v = +0 when none agrees).
  ;; The value is then finished by one of four loops, by $mode: 0: b + v·t2; 3: b + v·t_a with
  ;; t1 = t2; 1: b + v·t_a; 2: b + λ·(v / t_a), where t_a is t3 when both agree, t1 when model 0
  ;; alone, t2 otherwise (tiesKernelParams in methods.ts sets the t's and the mode). Returns 0
  ;; when some input is not finite (the sum of every δ0 + δ1 is then not finite): the caller then
  ;; recomputes the range with the reference kernel.
  (func (export "ties2m")
    (param $k0 i32) (param $k1 i32)
    (param $x0 i32) (param $x1 i32) (param $b i32) (param $out i32) (param $n i32)
    (param $c0 f64) (param $c1 f64) (param $lambda f64) (param $mode i32) (param $t1 f64) (param $t2 f64) (param $t3 f64)
    (result i32)
    (local $o i32) (local $end i32) (local $bo v128) (local $e0 v128) (local $e1 v128)
    (local $u0 v128) (local $u1 v128) (local $ng v128) (local $p0 v128) (local $p1 v128) (local $v v128)
    (local $sel v128) (local $rlo v128) (local $rhi v128) (local $acc v128) (local $zero v128) (local $sign v128)
    (local $vl v128) (local $vt2 v128) (local $x12 v128) (local $x31 v128)
    (local $t i32) (local $i0 i32) (local $i1 i32)
    (call $coefs (i32.const 1024) (local.get $c0))
    (call $coefs (i32.const 1536) (local.get $c1))
    (local.set $sign (v128.load (i32.const 128)))
    (local.set $vl (f64x2.splat (local.get $lambda)))
    (local.set $vt2 (f64x2.splat (local.get $t2)))
    (local.set $x12 (v128.xor (f64x2.splat (local.get $t1)) (local.get $vt2)))
    (local.set $x31 (v128.xor (f64x2.splat (local.get $t3)) (f64x2.splat (local.get $t1))))
    (local.set $end (i32.shl (i32.and (local.get $n) (i32.const -4)) (i32.const 2)))
    (if (i32.eq (local.get $mode) (i32.const 0))
      (then
        (block $uni_done
          (loop $uni
            (br_if $uni_done (i32.ge_u (local.get $o) (local.get $end)))
            (local.set $i0
              (i32.shl (i32.and (i32.shr_u
                (i32.load (i32.add (local.get $k0) (i32.and (i32.shr_u (local.get $t) (i32.const 3)) (i32.const -4))))
                (local.get $t)) (i32.const 15)) (i32.const 5)))
            (local.set $i1
              (i32.shl (i32.and (i32.shr_u
                (i32.load (i32.add (local.get $k1) (i32.and (i32.shr_u (local.get $t) (i32.const 3)) (i32.const -4))))
                (local.get $t)) (i32.const 15)) (i32.const 5)))
            ;; elements 0, 1
            (local.set $bo (f64x2.promote_low_f32x4 (v128.load64_zero (i32.add (local.get $b) (local.get $o)))))
            (local.set $e0 (f64x2.sub (f64x2.promote_low_f32x4 (v128.load64_zero (i32.add (local.get $x0) (local.get $o)))) (local.get $bo)))
            (local.set $e1 (f64x2.sub (f64x2.promote_low_f32x4 (v128.load64_zero (i32.add (local.get $x1) (local.get $o)))) (local.get $bo)))
            (local.set $u0 (f64x2.mul (v128.load offset=1024 (local.get $i0)) (local.get $e0)))
            (local.set $u1 (f64x2.mul (v128.load offset=1536 (local.get $i1)) (local.get $e1)))
            (local.set $acc (f64x2.add (local.get $acc) (f64x2.add (local.get $e0) (local.get $e1))))
            (local.set $ng (v128.and (f64x2.add (local.get $u0) (local.get $u1)) (local.get $sign)))
            (local.set $p0 (f64x2.gt (v128.xor (local.get $u0) (local.get $ng)) (local.get $zero)))
            (local.set $p1 (f64x2.gt (v128.xor (local.get $u1) (local.get $ng)) (local.get $zero)))
            (local.set $v (f64x2.add (v128.and (local.get $u0) (local.get $p0)) (v128.and (local.get $u1) (local.get $p1))))
            (local.set $sel (local.get $vt2))
            (local.set $rlo (f64x2.add (local.get $bo) (f64x2.mul (local.get $v) (local.get $sel))))
            ;; elements 2, 3
            (local.set $bo (f64x2.promote_low_f32x4 (v128.load64_zero offset=8 (i32.add (local.get $b) (local.get $o)))))
            (local.set $e0 (f64x2.sub (f64x2.promote_low_f32x4 (v128.load64_zero offset=8 (i32.add (local.get $x0) (local.get $o)))) (local.get $bo)))
            (local.set $e1 (f64x2.sub (f64x2.promote_low_f32x4 (v128.load64_zero offset=8 (i32.add (local.get $x1) (local.get $o)))) (local.get $bo)))
            (local.set $u0 (f64x2.mul (v128.load offset=1040 (local.get $i0)) (local.get $e0)))
            (local.set $u1 (f64x2.mul (v128.load offset=1552 (local.get $i1)) (local.get $e1)))
            (local.set $acc (f64x2.add (local.get $acc) (f64x2.add (local.get $e0) (local.get $e1))))
            (local.set $ng (v128.and (f64x2.add (local.get $u0) (local.get $u1)) (local.get $sign)))
            (local.set $p0 (f64x2.gt (v128.xor (local.get $u0) (local.get $ng)) (local.get $zero)))
            (local.set $p1 (f64x2.gt (v128.xor (local.get $u1) (local.get $ng)) (local.get $zero)))
            (local.set $v (f64x2.add (v128.and (local.get $u0) (local.get $p0)) (v128.and (local.get $u1) (local.get $p1))))
            (local.set $sel (local.get $vt2))
            (local.set $rhi (f64x2.add (local.get $bo) (f64x2.mul (local.get $v) (local.get $sel))))
            (v128.store (i32.add (local.get $out) (local.get $o))
              (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23
                (f32x4.demote_f64x2_zero (local.get $rlo))
                (f32x4.demote_f64x2_zero (local.get $rhi))))
            (local.set $o (i32.add (local.get $o) (i32.const 16)))
            (local.set $t (i32.add (local.get $t) (i32.const 4)))
            (br $uni)))
      ))
    (if (i32.eq (local.get $mode) (i32.const 3))
      (then
        (block $sym_done
          (loop $sym
            (br_if $sym_done (i32.ge_u (local.get $o) (local.get $end)))
            (local.set $i0
              (i32.shl (i32.and (i32.shr_u
                (i32.load (i32.add (local.get $k0) (i32.and (i32.shr_u (local.get $t) (i32.const 3)) (i32.const -4))))
                (local.get $t)) (i32.const 15)) (i32.const 5)))
            (local.set $i1
              (i32.shl (i32.and (i32.shr_u
                (i32.load (i32.add (local.get $k1) (i32.and (i32.shr_u (local.get $t) (i32.const 3)) (i32.const -4))))
                (local.get $t)) (i32.const 15)) (i32.const 5)))
            ;; elements 0, 1
            (local.set $bo (f64x2.promote_low_f32x4 (v128.load64_zero (i32.add (local.get $b) (local.get $o)))))
            (local.set $e0 (f64x2.sub (f64x2.promote_low_f32x4 (v128.load64_zero (i32.add (local.get $x0) (local.get $o)))) (local.get $bo)))
            (local.set $e1 (f64x2.sub (f64x2.promote_low_f32x4 (v128.load64_zero (i32.add (local.get $x1) (local.get $o)))) (local.get $bo)))
            (local.set $u0 (f64x2.mul (v128.load offset=1024 (local.get $i0)) (local.get $e0)))
            (local.set $u1 (f64x2.mul (v128.load offset=1536 (local.get $i1)) (local.get $e1)))
            (local.set $acc (f64x2.add (local.get $acc) (f64x2.add (local.get $e0) (local.get $e1))))
            (local.set $ng (v128.and (f64x2.add (local.get $u0) (local.get $u1)) (local.get $sign)))
            (local.set $p0 (f64x2.gt (v128.xor (local.get $u0) (local.get $ng)) (local.get $zero)))
            (local.set $p1 (f64x2.gt (v128.xor (local.get $u1) (local.get $ng)) (local.get $zero)))
            (local.set $v (f64x2.add (v128.and (local.get $u0) (local.get $p0)) (v128.and (local.get $u1) (local.get $p1))))
            (local.set $sel (v128.xor (local.get $vt2) (v128.and (v128.and (local.get $p0) (local.get $p1)) (local.get $x31))))
            (local.set $rlo (f64x2.add (local.get $bo) (f64x2.mul (local.get $v) (local.get $sel))))
            ;; elements 2, 3
            (local.set $bo (f64x2.promote_low_f32x4 (v128.load64_zero offset=8 (i32.add (local.get $b) (local.get $o)))))
            (local.set $e0 (f64x2.sub (f64x2.promote_low_f32x4 (v128.load64_zero offset=8 (i32.add (local.get $x0) (local.get $o)))) (local.get $bo)))
            (local.set $e1 (f64x2.sub (f64x2.promote_low_f32x4 (v128.load64_zero offset=8 (i32.add (local.get $x1) (local.get $o)))) (local.get $bo)))
            (local.set $u0 (f64x2.mul (v128.load offset=1040 (local.get $i0)) (local.get $e0)))
            (local.set $u1 (f64x2.mul (v128.load offset=1552 (local.get $i1)) (local.get $e1)))
            (local.set $acc (f64x2.add (local.get $acc) (f64x2.add (local.get $e0) (local.get $e1))))
            (local.set $ng (v128.and (f64x2.add (local.get $u0) (local.get $u1)) (local.get $sign)))
            (local.set $p0 (f64x2.gt (v128.xor (local.get $u0) (local.get $ng)) (local.get $zero)))
            (local.set $p1 (f64x2.gt (v128.xor (local.get $u1) (local.get $ng)) (local.get $zero)))
            (local.set $v (f64x2.add (v128.and (local.get $u0) (local.get $p0)) (v128.and (local.get $u1) (local.get $p1))))
            (local.set $sel (v128.xor (local.get $vt2) (v128.and (v128.and (local.get $p0) (local.get $p1)) (local.get $x31))))
            (local.set $rhi (f64x2.add (local.get $bo) (f64x2.mul (local.get $v) (local.get $sel))))
            (v128.store (i32.add (local.get $out) (local.get $o))
              (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23
                (f32x4.demote_f64x2_zero (local.get $rlo))
                (f32x4.demote_f64x2_zero (local.get $rhi))))
            (local.set $o (i32.add (local.get $o) (i32.const 16)))
            (local.set $t (i32.add (local.get $t) (i32.const 4)))
            (br $sym)))
      ))
    (if (i32.eq (local.get $mode) (i32.const 1))
      (then
        (block $gen_done
          (loop $gen
            (br_if $gen_done (i32.ge_u (local.get $o) (local.get $end)))
            (local.set $i0
              (i32.shl (i32.and (i32.shr_u
                (i32.load (i32.add (local.get $k0) (i32.and (i32.shr_u (local.get $t) (i32.const 3)) (i32.const -4))))
                (local.get $t)) (i32.const 15)) (i32.const 5)))
            (local.set $i1
              (i32.shl (i32.and (i32.shr_u
                (i32.load (i32.add (local.get $k1) (i32.and (i32.shr_u (local.get $t) (i32.const 3)) (i32.const -4))))
                (local.get $t)) (i32.const 15)) (i32.const 5)))
            ;; elements 0, 1
            (local.set $bo (f64x2.promote_low_f32x4 (v128.load64_zero (i32.add (local.get $b) (local.get $o)))))
            (local.set $e0 (f64x2.sub (f64x2.promote_low_f32x4 (v128.load64_zero (i32.add (local.get $x0) (local.get $o)))) (local.get $bo)))
            (local.set $e1 (f64x2.sub (f64x2.promote_low_f32x4 (v128.load64_zero (i32.add (local.get $x1) (local.get $o)))) (local.get $bo)))
            (local.set $u0 (f64x2.mul (v128.load offset=1024 (local.get $i0)) (local.get $e0)))
            (local.set $u1 (f64x2.mul (v128.load offset=1536 (local.get $i1)) (local.get $e1)))
            (local.set $acc (f64x2.add (local.get $acc) (f64x2.add (local.get $e0) (local.get $e1))))
            (local.set $ng (v128.and (f64x2.add (local.get $u0) (local.get $u1)) (local.get $sign)))
            (local.set $p0 (f64x2.gt (v128.xor (local.get $u0) (local.get $ng)) (local.get $zero)))
            (local.set $p1 (f64x2.gt (v128.xor (local.get $u1) (local.get $ng)) (local.get $zero)))
            (local.set $v (f64x2.add (v128.and (local.get $u0) (local.get $p0)) (v128.and (local.get $u1) (local.get $p1))))
            (local.set $sel (v128.xor (v128.xor (local.get $vt2) (v128.and (local.get $p0) (local.get $x12)))
              (v128.and (v128.and (local.get $p0) (local.get $p1)) (local.get $x31))))
            (local.set $rlo (f64x2.add (local.get $bo) (f64x2.mul (local.get $v) (local.get $sel))))
            ;; elements 2, 3
            (local.set $bo (f64x2.promote_low_f32x4 (v128.load64_zero offset=8 (i32.add (local.get $b) (local.get $o)))))
            (local.set $e0 (f64x2.sub (f64x2.promote_low_f32x4 (v128.load64_zero offset=8 (i32.add (local.get $x0) (local.get $o)))) (local.get $bo)))
            (local.set $e1 (f64x2.sub (f64x2.promote_low_f32x4 (v128.load64_zero offset=8 (i32.add (local.get $x1) (local.get $o)))) (local.get $bo)))
            (local.set $u0 (f64x2.mul (v128.load offset=1040 (local.get $i0)) (local.get $e0)))
            (local.set $u1 (f64x2.mul (v128.load offset=1552 (local.get $i1)) (local.get $e1)))
            (local.set $acc (f64x2.add (local.get $acc) (f64x2.add (local.get $e0) (local.get $e1))))
            (local.set $ng (v128.and (f64x2.add (local.get $u0) (local.get $u1)) (local.get $sign)))
            (local.set $p0 (f64x2.gt (v128.xor (local.get $u0) (local.get $ng)) (local.get $zero)))
            (local.set $p1 (f64x2.gt (v128.xor (local.get $u1) (local.get $ng)) (local.get $zero)))
            (local.set $v (f64x2.add (v128.and (local.get $u0) (local.get $p0)) (v128.and (local.get $u1) (local.get $p1))))
            (local.set $sel (v128.xor (v128.xor (local.get $vt2) (v128.and (local.get $p0) (local.get $x12)))
              (v128.and (v128.and (local.get $p0) (local.get $p1)) (local.get $x31))))
            (local.set $rhi (f64x2.add (local.get $bo) (f64x2.mul (local.get $v) (local.get $sel))))
            (v128.store (i32.add (local.get $out) (local.get $o))
              (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23
                (f32x4.demote_f64x2_zero (local.get $rlo))
                (f32x4.demote_f64x2_zero (local.get $rhi))))
            (local.set $o (i32.add (local.get $o) (i32.const 16)))
            (local.set $t (i32.add (local.get $t) (i32.const 4)))
            (br $gen)))
      ))
    (if (i32.eq (local.get $mode) (i32.const 2))
      (then
        (block $div_done
          (loop $div
            (br_if $div_done (i32.ge_u (local.get $o) (local.get $end)))
            (local.set $i0
              (i32.shl (i32.and (i32.shr_u
                (i32.load (i32.add (local.get $k0) (i32.and (i32.shr_u (local.get $t) (i32.const 3)) (i32.const -4))))
                (local.get $t)) (i32.const 15)) (i32.const 5)))
            (local.set $i1
              (i32.shl (i32.and (i32.shr_u
                (i32.load (i32.add (local.get $k1) (i32.and (i32.shr_u (local.get $t) (i32.const 3)) (i32.const -4))))
                (local.get $t)) (i32.const 15)) (i32.const 5)))
            ;; elements 0, 1
            (local.set $bo (f64x2.promote_low_f32x4 (v128.load64_zero (i32.add (local.get $b) (local.get $o)))))
            (local.set $e0 (f64x2.sub (f64x2.promote_low_f32x4 (v128.load64_zero (i32.add (local.get $x0) (local.get $o)))) (local.get $bo)))
            (local.set $e1 (f64x2.sub (f64x2.promote_low_f32x4 (v128.load64_zero (i32.add (local.get $x1) (local.get $o)))) (local.get $bo)))
            (local.set $u0 (f64x2.mul (v128.load offset=1024 (local.get $i0)) (local.get $e0)))
            (local.set $u1 (f64x2.mul (v128.load offset=1536 (local.get $i1)) (local.get $e1)))
            (local.set $acc (f64x2.add (local.get $acc) (f64x2.add (local.get $e0) (local.get $e1))))
            (local.set $ng (v128.and (f64x2.add (local.get $u0) (local.get $u1)) (local.get $sign)))
            (local.set $p0 (f64x2.gt (v128.xor (local.get $u0) (local.get $ng)) (local.get $zero)))
            (local.set $p1 (f64x2.gt (v128.xor (local.get $u1) (local.get $ng)) (local.get $zero)))
            (local.set $v (f64x2.add (v128.and (local.get $u0) (local.get $p0)) (v128.and (local.get $u1) (local.get $p1))))
            (local.set $sel (v128.xor (v128.xor (local.get $vt2) (v128.and (local.get $p0) (local.get $x12)))
              (v128.and (v128.and (local.get $p0) (local.get $p1)) (local.get $x31))))
            (local.set $rlo (f64x2.add (local.get $bo) (f64x2.mul (local.get $vl) (f64x2.div (local.get $v) (local.get $sel)))))
            ;; elements 2, 3
            (local.set $bo (f64x2.promote_low_f32x4 (v128.load64_zero offset=8 (i32.add (local.get $b) (local.get $o)))))
            (local.set $e0 (f64x2.sub (f64x2.promote_low_f32x4 (v128.load64_zero offset=8 (i32.add (local.get $x0) (local.get $o)))) (local.get $bo)))
            (local.set $e1 (f64x2.sub (f64x2.promote_low_f32x4 (v128.load64_zero offset=8 (i32.add (local.get $x1) (local.get $o)))) (local.get $bo)))
            (local.set $u0 (f64x2.mul (v128.load offset=1040 (local.get $i0)) (local.get $e0)))
            (local.set $u1 (f64x2.mul (v128.load offset=1552 (local.get $i1)) (local.get $e1)))
            (local.set $acc (f64x2.add (local.get $acc) (f64x2.add (local.get $e0) (local.get $e1))))
            (local.set $ng (v128.and (f64x2.add (local.get $u0) (local.get $u1)) (local.get $sign)))
            (local.set $p0 (f64x2.gt (v128.xor (local.get $u0) (local.get $ng)) (local.get $zero)))
            (local.set $p1 (f64x2.gt (v128.xor (local.get $u1) (local.get $ng)) (local.get $zero)))
            (local.set $v (f64x2.add (v128.and (local.get $u0) (local.get $p0)) (v128.and (local.get $u1) (local.get $p1))))
            (local.set $sel (v128.xor (v128.xor (local.get $vt2) (v128.and (local.get $p0) (local.get $x12)))
              (v128.and (v128.and (local.get $p0) (local.get $p1)) (local.get $x31))))
            (local.set $rhi (f64x2.add (local.get $bo) (f64x2.mul (local.get $vl) (f64x2.div (local.get $v) (local.get $sel)))))
            (v128.store (i32.add (local.get $out) (local.get $o))
              (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23
                (f32x4.demote_f64x2_zero (local.get $rlo))
                (f32x4.demote_f64x2_zero (local.get $rhi))))
            (local.set $o (i32.add (local.get $o) (i32.const 16)))
            (local.set $t (i32.add (local.get $t) (i32.const 4)))
            (br $div)))
      ))
    ;; 1 when every input was finite: acc − acc is then 0 in both lanes
    (local.set $acc (f64x2.sub (local.get $acc) (local.get $acc)))
    (i32.and
      (f64.eq (f64x2.extract_lane 0 (local.get $acc)) (f64.const 0))
      (f64.eq (f64x2.extract_lane 1 (local.get $acc)) (f64.const 0))))

  (func (export "ties2t")
    (param $cut0 f64) (param $cut1 f64)
    (param $x0 i32) (param $x1 i32) (param $b i32) (param $out i32) (param $n i32)
    (param $c0 f64) (param $c1 f64) (param $lambda f64) (param $mode i32) (param $t1 f64) (param $t2 f64) (param $t3 f64)
    (result i32)
    (local $o i32) (local $end i32) (local $bo v128) (local $e0 v128) (local $e1 v128)
    (local $u0 v128) (local $u1 v128) (local $ng v128) (local $p0 v128) (local $p1 v128) (local $v v128)
    (local $sel v128) (local $rlo v128) (local $rhi v128) (local $acc v128) (local $zero v128) (local $sign v128)
    (local $vl v128) (local $vt2 v128) (local $x12 v128) (local $x31 v128)
    (local $vc0 v128) (local $vc1 v128) (local $vcut0 v128) (local $vcut1 v128) (local $abs v128)
    (local.set $vc0 (f64x2.splat (local.get $c0)))
    (local.set $vc1 (f64x2.splat (local.get $c1)))
    (local.set $vcut0 (f64x2.splat (local.get $cut0)))
    (local.set $vcut1 (f64x2.splat (local.get $cut1)))
    (local.set $abs (v128.load (i32.const 144)))
    (local.set $sign (v128.load (i32.const 128)))
    (local.set $vl (f64x2.splat (local.get $lambda)))
    (local.set $vt2 (f64x2.splat (local.get $t2)))
    (local.set $x12 (v128.xor (f64x2.splat (local.get $t1)) (local.get $vt2)))
    (local.set $x31 (v128.xor (f64x2.splat (local.get $t3)) (f64x2.splat (local.get $t1))))
    (local.set $end (i32.shl (i32.and (local.get $n) (i32.const -4)) (i32.const 2)))
    (if (i32.eq (local.get $mode) (i32.const 0))
      (then
        (block $uni_done
          (loop $uni
            (br_if $uni_done (i32.ge_u (local.get $o) (local.get $end)))
            ;; elements 0, 1
            (local.set $bo (f64x2.promote_low_f32x4 (v128.load64_zero (i32.add (local.get $b) (local.get $o)))))
            (local.set $e0 (f64x2.sub (f64x2.promote_low_f32x4 (v128.load64_zero (i32.add (local.get $x0) (local.get $o)))) (local.get $bo)))
            (local.set $e1 (f64x2.sub (f64x2.promote_low_f32x4 (v128.load64_zero (i32.add (local.get $x1) (local.get $o)))) (local.get $bo)))
            (local.set $u0 (v128.and (f64x2.mul (local.get $vc0) (local.get $e0))
              (f64x2.gt (v128.and (local.get $e0) (local.get $abs)) (local.get $vcut0))))
            (local.set $u1 (v128.and (f64x2.mul (local.get $vc1) (local.get $e1))
              (f64x2.gt (v128.and (local.get $e1) (local.get $abs)) (local.get $vcut1))))
            (local.set $acc (f64x2.add (local.get $acc) (f64x2.add (local.get $e0) (local.get $e1))))
            (local.set $ng (v128.and (f64x2.add (local.get $u0) (local.get $u1)) (local.get $sign)))
            (local.set $p0 (f64x2.gt (v128.xor (local.get $u0) (local.get $ng)) (local.get $zero)))
            (local.set $p1 (f64x2.gt (v128.xor (local.get $u1) (local.get $ng)) (local.get $zero)))
            (local.set $v (f64x2.add (v128.and (local.get $u0) (local.get $p0)) (v128.and (local.get $u1) (local.get $p1))))
            (local.set $sel (local.get $vt2))
            (local.set $rlo (f64x2.add (local.get $bo) (f64x2.mul (local.get $v) (local.get $sel))))
            ;; elements 2, 3
            (local.set $bo (f64x2.promote_low_f32x4 (v128.load64_zero offset=8 (i32.add (local.get $b) (local.get $o)))))
            (local.set $e0 (f64x2.sub (f64x2.promote_low_f32x4 (v128.load64_zero offset=8 (i32.add (local.get $x0) (local.get $o)))) (local.get $bo)))
            (local.set $e1 (f64x2.sub (f64x2.promote_low_f32x4 (v128.load64_zero offset=8 (i32.add (local.get $x1) (local.get $o)))) (local.get $bo)))
            (local.set $u0 (v128.and (f64x2.mul (local.get $vc0) (local.get $e0))
              (f64x2.gt (v128.and (local.get $e0) (local.get $abs)) (local.get $vcut0))))
            (local.set $u1 (v128.and (f64x2.mul (local.get $vc1) (local.get $e1))
              (f64x2.gt (v128.and (local.get $e1) (local.get $abs)) (local.get $vcut1))))
            (local.set $acc (f64x2.add (local.get $acc) (f64x2.add (local.get $e0) (local.get $e1))))
            (local.set $ng (v128.and (f64x2.add (local.get $u0) (local.get $u1)) (local.get $sign)))
            (local.set $p0 (f64x2.gt (v128.xor (local.get $u0) (local.get $ng)) (local.get $zero)))
            (local.set $p1 (f64x2.gt (v128.xor (local.get $u1) (local.get $ng)) (local.get $zero)))
            (local.set $v (f64x2.add (v128.and (local.get $u0) (local.get $p0)) (v128.and (local.get $u1) (local.get $p1))))
            (local.set $sel (local.get $vt2))
            (local.set $rhi (f64x2.add (local.get $bo) (f64x2.mul (local.get $v) (local.get $sel))))
            (v128.store (i32.add (local.get $out) (local.get $o))
              (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23
                (f32x4.demote_f64x2_zero (local.get $rlo))
                (f32x4.demote_f64x2_zero (local.get $rhi))))
            (local.set $o (i32.add (local.get $o) (i32.const 16)))
            (br $uni)))
      ))
    (if (i32.eq (local.get $mode) (i32.const 3))
      (then
        (block $sym_done
          (loop $sym
            (br_if $sym_done (i32.ge_u (local.get $o) (local.get $end)))
            ;; elements 0, 1
            (local.set $bo (f64x2.promote_low_f32x4 (v128.load64_zero (i32.add (local.get $b) (local.get $o)))))
            (local.set $e0 (f64x2.sub (f64x2.promote_low_f32x4 (v128.load64_zero (i32.add (local.get $x0) (local.get $o)))) (local.get $bo)))
            (local.set $e1 (f64x2.sub (f64x2.promote_low_f32x4 (v128.load64_zero (i32.add (local.get $x1) (local.get $o)))) (local.get $bo)))
            (local.set $u0 (v128.and (f64x2.mul (local.get $vc0) (local.get $e0))
              (f64x2.gt (v128.and (local.get $e0) (local.get $abs)) (local.get $vcut0))))
            (local.set $u1 (v128.and (f64x2.mul (local.get $vc1) (local.get $e1))
              (f64x2.gt (v128.and (local.get $e1) (local.get $abs)) (local.get $vcut1))))
            (local.set $acc (f64x2.add (local.get $acc) (f64x2.add (local.get $e0) (local.get $e1))))
            (local.set $ng (v128.and (f64x2.add (local.get $u0) (local.get $u1)) (local.get $sign)))
            (local.set $p0 (f64x2.gt (v128.xor (local.get $u0) (local.get $ng)) (local.get $zero)))
            (local.set $p1 (f64x2.gt (v128.xor (local.get $u1) (local.get $ng)) (local.get $zero)))
            (local.set $v (f64x2.add (v128.and (local.get $u0) (local.get $p0)) (v128.and (local.get $u1) (local.get $p1))))
            (local.set $sel (v128.xor (local.get $vt2) (v128.and (v128.and (local.get $p0) (local.get $p1)) (local.get $x31))))
            (local.set $rlo (f64x2.add (local.get $bo) (f64x2.mul (local.get $v) (local.get $sel))))
            ;; elements 2, 3
            (local.set $bo (f64x2.promote_low_f32x4 (v128.load64_zero offset=8 (i32.add (local.get $b) (local.get $o)))))
            (local.set $e0 (f64x2.sub (f64x2.promote_low_f32x4 (v128.load64_zero offset=8 (i32.add (local.get $x0) (local.get $o)))) (local.get $bo)))
            (local.set $e1 (f64x2.sub (f64x2.promote_low_f32x4 (v128.load64_zero offset=8 (i32.add (local.get $x1) (local.get $o)))) (local.get $bo)))
            (local.set $u0 (v128.and (f64x2.mul (local.get $vc0) (local.get $e0))
              (f64x2.gt (v128.and (local.get $e0) (local.get $abs)) (local.get $vcut0))))
            (local.set $u1 (v128.and (f64x2.mul (local.get $vc1) (local.get $e1))
              (f64x2.gt (v128.and (local.get $e1) (local.get $abs)) (local.get $vcut1))))
            (local.set $acc (f64x2.add (local.get $acc) (f64x2.add (local.get $e0) (local.get $e1))))
            (local.set $ng (v128.and (f64x2.add (local.get $u0) (local.get $u1)) (local.get $sign)))
            (local.set $p0 (f64x2.gt (v128.xor (local.get $u0) (local.get $ng)) (local.get $zero)))
            (local.set $p1 (f64x2.gt (v128.xor (local.get $u1) (local.get $ng)) (local.get $zero)))
            (local.set $v (f64x2.add (v128.and (local.get $u0) (local.get $p0)) (v128.and (local.get $u1) (local.get $p1))))
            (local.set $sel (v128.xor (local.get $vt2) (v128.and (v128.and (local.get $p0) (local.get $p1)) (local.get $x31))))
            (local.set $rhi (f64x2.add (local.get $bo) (f64x2.mul (local.get $v) (local.get $sel))))
            (v128.store (i32.add (local.get $out) (local.get $o))
              (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23
                (f32x4.demote_f64x2_zero (local.get $rlo))
                (f32x4.demote_f64x2_zero (local.get $rhi))))
            (local.set $o (i32.add (local.get $o) (i32.const 16)))
            (br $sym)))
      ))
    (if (i32.eq (local.get $mode) (i32.const 1))
      (then
        (block $gen_done
          (loop $gen
            (br_if $gen_done (i32.ge_u (local.get $o) (local.get $end)))
            ;; elements 0, 1
            (local.set $bo (f64x2.promote_low_f32x4 (v128.load64_zero (i32.add (local.get $b) (local.get $o)))))
            (local.set $e0 (f64x2.sub (f64x2.promote_low_f32x4 (v128.load64_zero (i32.add (local.get $x0) (local.get $o)))) (local.get $bo)))
            (local.set $e1 (f64x2.sub (f64x2.promote_low_f32x4 (v128.load64_zero (i32.add (local.get $x1) (local.get $o)))) (local.get $bo)))
            (local.set $u0 (v128.and (f64x2.mul (local.get $vc0) (local.get $e0))
              (f64x2.gt (v128.and (local.get $e0) (local.get $abs)) (local.get $vcut0))))
            (local.set $u1 (v128.and (f64x2.mul (local.get $vc1) (local.get $e1))
              (f64x2.gt (v128.and (local.get $e1) (local.get $abs)) (local.get $vcut1))))
            (local.set $acc (f64x2.add (local.get $acc) (f64x2.add (local.get $e0) (local.get $e1))))
            (local.set $ng (v128.and (f64x2.add (local.get $u0) (local.get $u1)) (local.get $sign)))
            (local.set $p0 (f64x2.gt (v128.xor (local.get $u0) (local.get $ng)) (local.get $zero)))
            (local.set $p1 (f64x2.gt (v128.xor (local.get $u1) (local.get $ng)) (local.get $zero)))
            (local.set $v (f64x2.add (v128.and (local.get $u0) (local.get $p0)) (v128.and (local.get $u1) (local.get $p1))))
            (local.set $sel (v128.xor (v128.xor (local.get $vt2) (v128.and (local.get $p0) (local.get $x12)))
              (v128.and (v128.and (local.get $p0) (local.get $p1)) (local.get $x31))))
            (local.set $rlo (f64x2.add (local.get $bo) (f64x2.mul (local.get $v) (local.get $sel))))
            ;; elements 2, 3
            (local.set $bo (f64x2.promote_low_f32x4 (v128.load64_zero offset=8 (i32.add (local.get $b) (local.get $o)))))
            (local.set $e0 (f64x2.sub (f64x2.promote_low_f32x4 (v128.load64_zero offset=8 (i32.add (local.get $x0) (local.get $o)))) (local.get $bo)))
            (local.set $e1 (f64x2.sub (f64x2.promote_low_f32x4 (v128.load64_zero offset=8 (i32.add (local.get $x1) (local.get $o)))) (local.get $bo)))
            (local.set $u0 (v128.and (f64x2.mul (local.get $vc0) (local.get $e0))
              (f64x2.gt (v128.and (local.get $e0) (local.get $abs)) (local.get $vcut0))))
            (local.set $u1 (v128.and (f64x2.mul (local.get $vc1) (local.get $e1))
              (f64x2.gt (v128.and (local.get $e1) (local.get $abs)) (local.get $vcut1))))
            (local.set $acc (f64x2.add (local.get $acc) (f64x2.add (local.get $e0) (local.get $e1))))
            (local.set $ng (v128.and (f64x2.add (local.get $u0) (local.get $u1)) (local.get $sign)))
            (local.set $p0 (f64x2.gt (v128.xor (local.get $u0) (local.get $ng)) (local.get $zero)))
            (local.set $p1 (f64x2.gt (v128.xor (local.get $u1) (local.get $ng)) (local.get $zero)))
            (local.set $v (f64x2.add (v128.and (local.get $u0) (local.get $p0)) (v128.and (local.get $u1) (local.get $p1))))
            (local.set $sel (v128.xor (v128.xor (local.get $vt2) (v128.and (local.get $p0) (local.get $x12)))
              (v128.and (v128.and (local.get $p0) (local.get $p1)) (local.get $x31))))
            (local.set $rhi (f64x2.add (local.get $bo) (f64x2.mul (local.get $v) (local.get $sel))))
            (v128.store (i32.add (local.get $out) (local.get $o))
              (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23
                (f32x4.demote_f64x2_zero (local.get $rlo))
                (f32x4.demote_f64x2_zero (local.get $rhi))))
            (local.set $o (i32.add (local.get $o) (i32.const 16)))
            (br $gen)))
      ))
    (if (i32.eq (local.get $mode) (i32.const 2))
      (then
        (block $div_done
          (loop $div
            (br_if $div_done (i32.ge_u (local.get $o) (local.get $end)))
            ;; elements 0, 1
            (local.set $bo (f64x2.promote_low_f32x4 (v128.load64_zero (i32.add (local.get $b) (local.get $o)))))
            (local.set $e0 (f64x2.sub (f64x2.promote_low_f32x4 (v128.load64_zero (i32.add (local.get $x0) (local.get $o)))) (local.get $bo)))
            (local.set $e1 (f64x2.sub (f64x2.promote_low_f32x4 (v128.load64_zero (i32.add (local.get $x1) (local.get $o)))) (local.get $bo)))
            (local.set $u0 (v128.and (f64x2.mul (local.get $vc0) (local.get $e0))
              (f64x2.gt (v128.and (local.get $e0) (local.get $abs)) (local.get $vcut0))))
            (local.set $u1 (v128.and (f64x2.mul (local.get $vc1) (local.get $e1))
              (f64x2.gt (v128.and (local.get $e1) (local.get $abs)) (local.get $vcut1))))
            (local.set $acc (f64x2.add (local.get $acc) (f64x2.add (local.get $e0) (local.get $e1))))
            (local.set $ng (v128.and (f64x2.add (local.get $u0) (local.get $u1)) (local.get $sign)))
            (local.set $p0 (f64x2.gt (v128.xor (local.get $u0) (local.get $ng)) (local.get $zero)))
            (local.set $p1 (f64x2.gt (v128.xor (local.get $u1) (local.get $ng)) (local.get $zero)))
            (local.set $v (f64x2.add (v128.and (local.get $u0) (local.get $p0)) (v128.and (local.get $u1) (local.get $p1))))
            (local.set $sel (v128.xor (v128.xor (local.get $vt2) (v128.and (local.get $p0) (local.get $x12)))
              (v128.and (v128.and (local.get $p0) (local.get $p1)) (local.get $x31))))
            (local.set $rlo (f64x2.add (local.get $bo) (f64x2.mul (local.get $vl) (f64x2.div (local.get $v) (local.get $sel)))))
            ;; elements 2, 3
            (local.set $bo (f64x2.promote_low_f32x4 (v128.load64_zero offset=8 (i32.add (local.get $b) (local.get $o)))))
            (local.set $e0 (f64x2.sub (f64x2.promote_low_f32x4 (v128.load64_zero offset=8 (i32.add (local.get $x0) (local.get $o)))) (local.get $bo)))
            (local.set $e1 (f64x2.sub (f64x2.promote_low_f32x4 (v128.load64_zero offset=8 (i32.add (local.get $x1) (local.get $o)))) (local.get $bo)))
            (local.set $u0 (v128.and (f64x2.mul (local.get $vc0) (local.get $e0))
              (f64x2.gt (v128.and (local.get $e0) (local.get $abs)) (local.get $vcut0))))
            (local.set $u1 (v128.and (f64x2.mul (local.get $vc1) (local.get $e1))
              (f64x2.gt (v128.and (local.get $e1) (local.get $abs)) (local.get $vcut1))))
            (local.set $acc (f64x2.add (local.get $acc) (f64x2.add (local.get $e0) (local.get $e1))))
            (local.set $ng (v128.and (f64x2.add (local.get $u0) (local.get $u1)) (local.get $sign)))
            (local.set $p0 (f64x2.gt (v128.xor (local.get $u0) (local.get $ng)) (local.get $zero)))
            (local.set $p1 (f64x2.gt (v128.xor (local.get $u1) (local.get $ng)) (local.get $zero)))
            (local.set $v (f64x2.add (v128.and (local.get $u0) (local.get $p0)) (v128.and (local.get $u1) (local.get $p1))))
            (local.set $sel (v128.xor (v128.xor (local.get $vt2) (v128.and (local.get $p0) (local.get $x12)))
              (v128.and (v128.and (local.get $p0) (local.get $p1)) (local.get $x31))))
            (local.set $rhi (f64x2.add (local.get $bo) (f64x2.mul (local.get $vl) (f64x2.div (local.get $v) (local.get $sel)))))
            (v128.store (i32.add (local.get $out) (local.get $o))
              (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23
                (f32x4.demote_f64x2_zero (local.get $rlo))
                (f32x4.demote_f64x2_zero (local.get $rhi))))
            (local.set $o (i32.add (local.get $o) (i32.const 16)))
            (br $div)))
      ))
    ;; 1 when every input was finite: acc − acc is then 0 in both lanes
    (local.set $acc (f64x2.sub (local.get $acc) (local.get $acc)))
    (i32.and
      (f64.eq (f64x2.extract_lane 0 (local.get $acc)) (f64.const 0))
      (f64.eq (f64x2.extract_lane 1 (local.get $acc)) (f64.const 0))))

  ;; planTrimPair's sample: runs of 16 elements at byte offsets 0, stride, 2·stride, … (runs of
  ;; them); for each element, hist_i[a_i >> 14]++ where a_i is the bit pattern of |f32(x_i − b)|
  ;; (a float32 subtraction rounds x − b as fround of the float64 one does). The histograms
  ;; (131,072 counts each) must be zeroed by the caller.
  (func (export "trimsample2")
    (param $x0 i32) (param $x1 i32) (param $b i32) (param $runs i32) (param $stride i32)
    (param $hist0 i32) (param $hist1 i32)
    (local $o i32) (local $r i32) (local $g i32) (local $h i32) (local $a0 v128) (local $a1 v128) (local $abs v128)
    (local.set $abs (v128.load (i32.const 160)))
    (block $done
      (loop $runs
        (br_if $done (i32.ge_u (local.get $r) (local.get $runs)))
        (local.set $g (i32.const 0))
        (loop $groups
          (local.set $a0 (v128.and (f32x4.sub (v128.load offset=0 (i32.add (local.get $x0) (local.get $o))) (v128.load offset=0 (i32.add (local.get $b) (local.get $o)))) (local.get $abs)))
          (local.set $a1 (v128.and (f32x4.sub (v128.load offset=0 (i32.add (local.get $x1) (local.get $o))) (v128.load offset=0 (i32.add (local.get $b) (local.get $o)))) (local.get $abs)))
        (local.set $h (i32.add (local.get $hist0) (i32.shl (i32.shr_u (i32x4.extract_lane 0 (local.get $a0)) (i32.const 14)) (i32.const 2))))
        (i32.store (local.get $h) (i32.add (i32.load (local.get $h)) (i32.const 1)))
        (local.set $h (i32.add (local.get $hist0) (i32.shl (i32.shr_u (i32x4.extract_lane 1 (local.get $a0)) (i32.const 14)) (i32.const 2))))
        (i32.store (local.get $h) (i32.add (i32.load (local.get $h)) (i32.const 1)))
        (local.set $h (i32.add (local.get $hist0) (i32.shl (i32.shr_u (i32x4.extract_lane 2 (local.get $a0)) (i32.const 14)) (i32.const 2))))
        (i32.store (local.get $h) (i32.add (i32.load (local.get $h)) (i32.const 1)))
        (local.set $h (i32.add (local.get $hist0) (i32.shl (i32.shr_u (i32x4.extract_lane 3 (local.get $a0)) (i32.const 14)) (i32.const 2))))
        (i32.store (local.get $h) (i32.add (i32.load (local.get $h)) (i32.const 1)))
        (local.set $h (i32.add (local.get $hist1) (i32.shl (i32.shr_u (i32x4.extract_lane 0 (local.get $a1)) (i32.const 14)) (i32.const 2))))
        (i32.store (local.get $h) (i32.add (i32.load (local.get $h)) (i32.const 1)))
        (local.set $h (i32.add (local.get $hist1) (i32.shl (i32.shr_u (i32x4.extract_lane 1 (local.get $a1)) (i32.const 14)) (i32.const 2))))
        (i32.store (local.get $h) (i32.add (i32.load (local.get $h)) (i32.const 1)))
        (local.set $h (i32.add (local.get $hist1) (i32.shl (i32.shr_u (i32x4.extract_lane 2 (local.get $a1)) (i32.const 14)) (i32.const 2))))
        (i32.store (local.get $h) (i32.add (i32.load (local.get $h)) (i32.const 1)))
        (local.set $h (i32.add (local.get $hist1) (i32.shl (i32.shr_u (i32x4.extract_lane 3 (local.get $a1)) (i32.const 14)) (i32.const 2))))
        (i32.store (local.get $h) (i32.add (i32.load (local.get $h)) (i32.const 1)))
          (local.set $o (i32.add (local.get $o) (i32.const 16)))
          (local.set $g (i32.add (local.get $g) (i32.const 1)))
          (br_if $groups (i32.lt_u (local.get $g) (i32.const 4))))
        (local.set $o (i32.add (local.get $o) (i32.sub (local.get $stride) (i32.const 64))))
        (local.set $r (i32.add (local.get $r) (i32.const 1)))
        (br $runs))))

  ;; planTrimPair's pass: for the elements 0..n (rounded down to a multiple of 4) of two task
  ;; vectors, with a_i the bit pattern of |f32(x_i − b)| (as in trimsample2; NaN patterns are the
  ;; largest), counts the a_i above hi_i and appends the a_i in [lo_i, hi_i] to band_i, their
  ;; indices (plus idxBase) to at_i, in index order. No branch on the data: the first loop notes every group of
  ;; four with an entry in either band (its index always stored, the count advanced by 0 or 1), the
  ;; second packs those groups' band entries forward through the compress table. Writes above0,
  ;; above1, nb0, nb1 as i32 at res; returns the elements done, or -1 when a band or the list of
  ;; groups (at `list`) would pass cap entries (the arrays must hold cap + 4: a store writes four).
  (func (export "trimband2")
    (param $x0 i32) (param $x1 i32) (param $b i32) (param $n i32)
    (param $lo0 i32) (param $hi0 i32) (param $lo1 i32) (param $hi1 i32)
    (param $band0 i32) (param $at0 i32) (param $band1 i32) (param $at1 i32) (param $list i32) (param $cap i32) (param $res i32)
    (param $idxBase i32)
    (result i32)
    (local $o i32) (local $t i32) (local $end i32) (local $m i32) (local $nb0 i32) (local $nb1 i32) (local $cnt i32) (local $j i32)
    (local $a0 v128) (local $a1 v128) (local $a v128) (local $ctrl v128) (local $idx v128)
    (local $ab0 v128) (local $ab1 v128) (local $abs v128)
    (local $vlo0 v128) (local $vhi0 v128) (local $vw0 v128) (local $vlo1 v128) (local $vhi1 v128) (local $vw1 v128)
    (local.set $abs (v128.load (i32.const 160)))
    (local.set $vlo0 (i32x4.splat (local.get $lo0)))
    (local.set $vhi0 (i32x4.splat (local.get $hi0)))
    (local.set $vw0 (i32x4.splat (i32.sub (local.get $hi0) (local.get $lo0))))
    (local.set $vlo1 (i32x4.splat (local.get $lo1)))
    (local.set $vhi1 (i32x4.splat (local.get $hi1)))
    (local.set $vw1 (i32x4.splat (i32.sub (local.get $hi1) (local.get $lo1))))
    (local.set $end (i32.shl (i32.and (local.get $n) (i32.const -4)) (i32.const 2)))
    (block $done
      (loop $l
        (br_if $done (i32.ge_u (local.get $o) (local.get $end)))
        (local.set $a0 (v128.and (f32x4.sub (v128.load (i32.add (local.get $x0) (local.get $o))) (v128.load (i32.add (local.get $b) (local.get $o)))) (local.get $abs)))
        (local.set $a1 (v128.and (f32x4.sub (v128.load (i32.add (local.get $x1) (local.get $o))) (v128.load (i32.add (local.get $b) (local.get $o)))) (local.get $abs)))
        ;; a lane's mask is −1 where a is above: subtracting it counts one
        (local.set $ab0 (i32x4.sub (local.get $ab0) (i32x4.gt_s (local.get $a0) (local.get $vhi0))))
        (local.set $ab1 (i32x4.sub (local.get $ab1) (i32x4.gt_s (local.get $a1) (local.get $vhi1))))
        (i32.store (i32.add (local.get $list) (i32.shl (local.get $cnt) (i32.const 2))) (local.get $o))
        (local.set $cnt (i32.add (local.get $cnt)
          (v128.any_true (v128.or
            (i32x4.le_u (i32x4.sub (local.get $a0) (local.get $vlo0)) (local.get $vw0))
            (i32x4.le_u (i32x4.sub (local.get $a1) (local.get $vlo1)) (local.get $vw1))))))
        (if (i32.gt_u (local.get $cnt) (local.get $cap)) (then (return (i32.const -1))))
        (local.set $o (i32.add (local.get $o) (i32.const 16)))
        (br $l)))
    ;; the noted groups (a group's byte offset o: elements o/4 .. o/4 + 3)
    (block $done2
      (loop $g
        (br_if $done2 (i32.ge_u (local.get $j) (local.get $cnt)))
        (local.set $o (i32.load (i32.add (local.get $list) (i32.shl (local.get $j) (i32.const 2)))))
        (local.set $idx (i32x4.add (i32x4.splat (i32.add (local.get $idxBase) (i32.shr_u (local.get $o) (i32.const 2))))
          (v128.const i32x4 0 1 2 3)))
          (local.set $a (v128.and (f32x4.sub (v128.load (i32.add (local.get $x0) (local.get $o))) (v128.load (i32.add (local.get $b) (local.get $o)))) (local.get $abs)))
          (local.set $m (i32x4.bitmask (i32x4.le_u (i32x4.sub (local.get $a) (local.get $vlo0)) (local.get $vw0))))
          (if (i32.gt_u (local.get $nb0) (local.get $cap)) (then (return (i32.const -1))))
          (local.set $ctrl (v128.load offset=256 (i32.shl (local.get $m) (i32.const 4))))
          (v128.store (i32.add (local.get $band0) (i32.shl (local.get $nb0) (i32.const 2)))
            (i8x16.swizzle (local.get $a) (local.get $ctrl)))
          (v128.store (i32.add (local.get $at0) (i32.shl (local.get $nb0) (i32.const 2)))
            (i8x16.swizzle (local.get $idx) (local.get $ctrl)))
          (local.set $nb0 (i32.add (local.get $nb0) (i32.popcnt (local.get $m))))
          (local.set $a (v128.and (f32x4.sub (v128.load (i32.add (local.get $x1) (local.get $o))) (v128.load (i32.add (local.get $b) (local.get $o)))) (local.get $abs)))
          (local.set $m (i32x4.bitmask (i32x4.le_u (i32x4.sub (local.get $a) (local.get $vlo1)) (local.get $vw1))))
          (if (i32.gt_u (local.get $nb1) (local.get $cap)) (then (return (i32.const -1))))
          (local.set $ctrl (v128.load offset=256 (i32.shl (local.get $m) (i32.const 4))))
          (v128.store (i32.add (local.get $band1) (i32.shl (local.get $nb1) (i32.const 2)))
            (i8x16.swizzle (local.get $a) (local.get $ctrl)))
          (v128.store (i32.add (local.get $at1) (i32.shl (local.get $nb1) (i32.const 2)))
            (i8x16.swizzle (local.get $idx) (local.get $ctrl)))
          (local.set $nb1 (i32.add (local.get $nb1) (i32.popcnt (local.get $m))))
          (local.set $j (i32.add (local.get $j) (i32.const 1)))
        (br $g)))
    (i32.store (local.get $res)
      (i32.add (i32.add (i32x4.extract_lane 0 (local.get $ab0)) (i32x4.extract_lane 1 (local.get $ab0)))
               (i32.add (i32x4.extract_lane 2 (local.get $ab0)) (i32x4.extract_lane 3 (local.get $ab0)))))
    (i32.store offset=4 (local.get $res)
      (i32.add (i32.add (i32x4.extract_lane 0 (local.get $ab1)) (i32x4.extract_lane 1 (local.get $ab1)))
               (i32.add (i32x4.extract_lane 2 (local.get $ab1)) (i32x4.extract_lane 3 (local.get $ab1)))))
    (i32.store offset=8 (local.get $res) (local.get $nb0))
    (i32.store offset=12 (local.get $res) (local.get $nb1))
    (i32.and (local.get $n) (i32.const -4)))

  ;; dareL1Factors' sums over elements 0..n of two models (keep masks k0, k1, bit 0 = element 0),
  ;; continuing the sums at acc: f64x2 [all0, all1] at acc, [kept0, kept1] at acc + 16, where
  ;; all_i += |x_i − b| and kept_i += that when kept, element by element in index order (each lane
  ;; is one model's sequential float64 sum, as the scalar loop's). A dropped entry adds +0 where
  ;; the scalar loop adds 0·d: the same sum while every d is finite (all_i is not finite
  ;; otherwise, and the caller then takes the scalar loop).
  (func (export "l1sums2")
    (param $k0 i32) (param $k1 i32) (param $x0 i32) (param $x1 i32) (param $b i32) (param $n i32) (param $acc i32)
    (local $o i32) (local $t i32) (local $end i32) (local $all v128) (local $kept v128) (local $d v128)
    (local $w v128) (local $one v128)
    (local.set $one (v128.load (i32.const 176)))
    (local.set $all (v128.load (local.get $acc)))
    (local.set $kept (v128.load offset=16 (local.get $acc)))
    (local.set $end (i32.and (local.get $n) (i32.const -4)))
    ;; four elements a step (t a multiple of 4: a new mask word every eight steps), then one
    (block $done4
      (loop $l4
        (br_if $done4 (i32.ge_u (local.get $t) (local.get $end)))
          (if (i32.eqz (i32.and (local.get $t) (i32.const 31)))
            (then
              (local.set $w
                (i64x2.replace_lane 1
                  (i64x2.splat (i64.extend_i32_u (i32.load (i32.add (local.get $k0) (i32.shr_u (local.get $t) (i32.const 3))))))
                  (i64.extend_i32_u (i32.load (i32.add (local.get $k1) (i32.shr_u (local.get $t) (i32.const 3)))))))))
          (local.set $d
            (f64x2.abs
              (f64x2.sub
                (f64x2.promote_low_f32x4 (v128.load32_lane 1 (i32.add (local.get $x1) (local.get $o))
                  (v128.load32_zero (i32.add (local.get $x0) (local.get $o)))))
                (f64x2.promote_low_f32x4 (v128.load32_splat (i32.add (local.get $b) (local.get $o)))))))
          (local.set $all (f64x2.add (local.get $all) (local.get $d)))
          (local.set $kept (f64x2.add (local.get $kept) (v128.and (local.get $d) (i64x2.eq (v128.and (local.get $w) (local.get $one)) (local.get $one)))))
          (local.set $w (i64x2.shr_u (local.get $w) (i32.const 1)))
          (local.set $o (i32.add (local.get $o) (i32.const 4)))
          (local.set $d
            (f64x2.abs
              (f64x2.sub
                (f64x2.promote_low_f32x4 (v128.load32_lane 1 (i32.add (local.get $x1) (local.get $o))
                  (v128.load32_zero (i32.add (local.get $x0) (local.get $o)))))
                (f64x2.promote_low_f32x4 (v128.load32_splat (i32.add (local.get $b) (local.get $o)))))))
          (local.set $all (f64x2.add (local.get $all) (local.get $d)))
          (local.set $kept (f64x2.add (local.get $kept) (v128.and (local.get $d) (i64x2.eq (v128.and (local.get $w) (local.get $one)) (local.get $one)))))
          (local.set $w (i64x2.shr_u (local.get $w) (i32.const 1)))
          (local.set $o (i32.add (local.get $o) (i32.const 4)))
          (local.set $d
            (f64x2.abs
              (f64x2.sub
                (f64x2.promote_low_f32x4 (v128.load32_lane 1 (i32.add (local.get $x1) (local.get $o))
                  (v128.load32_zero (i32.add (local.get $x0) (local.get $o)))))
                (f64x2.promote_low_f32x4 (v128.load32_splat (i32.add (local.get $b) (local.get $o)))))))
          (local.set $all (f64x2.add (local.get $all) (local.get $d)))
          (local.set $kept (f64x2.add (local.get $kept) (v128.and (local.get $d) (i64x2.eq (v128.and (local.get $w) (local.get $one)) (local.get $one)))))
          (local.set $w (i64x2.shr_u (local.get $w) (i32.const 1)))
          (local.set $o (i32.add (local.get $o) (i32.const 4)))
          (local.set $d
            (f64x2.abs
              (f64x2.sub
                (f64x2.promote_low_f32x4 (v128.load32_lane 1 (i32.add (local.get $x1) (local.get $o))
                  (v128.load32_zero (i32.add (local.get $x0) (local.get $o)))))
                (f64x2.promote_low_f32x4 (v128.load32_splat (i32.add (local.get $b) (local.get $o)))))))
          (local.set $all (f64x2.add (local.get $all) (local.get $d)))
          (local.set $kept (f64x2.add (local.get $kept) (v128.and (local.get $d) (i64x2.eq (v128.and (local.get $w) (local.get $one)) (local.get $one)))))
          (local.set $w (i64x2.shr_u (local.get $w) (i32.const 1)))
          (local.set $o (i32.add (local.get $o) (i32.const 4)))
        (local.set $t (i32.add (local.get $t) (i32.const 4)))
        (br $l4)))
    (block $done1
      (loop $l1
        (br_if $done1 (i32.ge_u (local.get $t) (local.get $n)))
          (if (i32.eqz (i32.and (local.get $t) (i32.const 31)))
            (then
              (local.set $w
                (i64x2.replace_lane 1
                  (i64x2.splat (i64.extend_i32_u (i32.load (i32.add (local.get $k0) (i32.shr_u (local.get $t) (i32.const 3))))))
                  (i64.extend_i32_u (i32.load (i32.add (local.get $k1) (i32.shr_u (local.get $t) (i32.const 3)))))))))
          (local.set $d
            (f64x2.abs
              (f64x2.sub
                (f64x2.promote_low_f32x4 (v128.load32_lane 1 (i32.add (local.get $x1) (local.get $o))
                  (v128.load32_zero (i32.add (local.get $x0) (local.get $o)))))
                (f64x2.promote_low_f32x4 (v128.load32_splat (i32.add (local.get $b) (local.get $o)))))))
          (local.set $all (f64x2.add (local.get $all) (local.get $d)))
          (local.set $kept (f64x2.add (local.get $kept) (v128.and (local.get $d) (i64x2.eq (v128.and (local.get $w) (local.get $one)) (local.get $one)))))
          (local.set $w (i64x2.shr_u (local.get $w) (i32.const 1)))
          (local.set $o (i32.add (local.get $o) (i32.const 4)))
        (local.set $t (i32.add (local.get $t) (i32.const 1)))
        (br $l1)))
    (v128.store (local.get $acc) (local.get $all))
    (v128.store offset=16 (local.get $acc) (local.get $kept)))

  ;; The first bin of hist[0..nbins) at which the running count passes rank (the bin holding the
  ;; entry of ascending rank `rank`, 0-based), or nbins. Blocks of 64 bins are summed four lanes
  ;; at a time and skipped whole; the bin is then found one by one inside its block.
  (func (export "histrank") (param $hist i32) (param $nbins i32) (param $rank i32) (result i32)
    (local $bin i32) (local $cum i32) (local $s v128) (local $p i32) (local $j i32) (local $sum i32)
    (block $found
      (loop $blocks
        (br_if $found (i32.ge_u (i32.add (local.get $bin) (i32.const 64)) (local.get $nbins)))
        (local.set $p (i32.add (local.get $hist) (i32.shl (local.get $bin) (i32.const 2))))
        (local.set $s (i32x4.add
          (i32x4.add
            (i32x4.add (i32x4.add (v128.load (local.get $p)) (v128.load offset=16 (local.get $p)))
                       (i32x4.add (v128.load offset=32 (local.get $p)) (v128.load offset=48 (local.get $p))))
            (i32x4.add (i32x4.add (v128.load offset=64 (local.get $p)) (v128.load offset=80 (local.get $p)))
                       (i32x4.add (v128.load offset=96 (local.get $p)) (v128.load offset=112 (local.get $p)))))
          (i32x4.add
            (i32x4.add
              (i32x4.add (v128.load offset=128 (local.get $p)) (v128.load offset=144 (local.get $p)))
              (i32x4.add (v128.load offset=160 (local.get $p)) (v128.load offset=176 (local.get $p))))
            (i32x4.add
              (i32x4.add (v128.load offset=192 (local.get $p)) (v128.load offset=208 (local.get $p)))
              (i32x4.add (v128.load offset=224 (local.get $p)) (v128.load offset=240 (local.get $p)))))))
        (local.set $sum (i32.add
          (i32.add (i32x4.extract_lane 0 (local.get $s)) (i32x4.extract_lane 1 (local.get $s)))
          (i32.add (i32x4.extract_lane 2 (local.get $s)) (i32x4.extract_lane 3 (local.get $s)))))
        (br_if $found (i32.gt_u (i32.add (local.get $cum) (local.get $sum)) (local.get $rank)))
        (local.set $cum (i32.add (local.get $cum) (local.get $sum)))
        (local.set $bin (i32.add (local.get $bin) (i32.const 64)))
        (br $blocks)))
    (block $done
      (loop $bins
        (br_if $done (i32.ge_u (local.get $bin) (local.get $nbins)))
        (local.set $cum (i32.add (local.get $cum)
          (i32.load (i32.add (local.get $hist) (i32.shl (local.get $bin) (i32.const 2))))))
        (br_if $done (i32.gt_u (local.get $cum) (local.get $rank)))
        (local.set $bin (i32.add (local.get $bin) (i32.const 1)))
        (br $bins)))
    (local.get $bin))

  ;; planFromBand's selection: the k-th largest (1-based) of band[0..n), entries known to lie in
  ;; [lo, hi] with hi − lo < 2^24, by two histograms at `hist` (4096 counts): one of the range in
  ;; bins of 2^shift patterns (shift ≤ 12, the least that fits 4096 bins), then one of the
  ;; patterns of the bin that holds it. Returns its bit pattern and writes the count of entries
  ;; strictly above it as i32 at res.
  (func (export "bandselect")
    (param $band i32) (param $n i32) (param $k i32) (param $lo i32) (param $hi i32) (param $hist i32) (param $res i32)
    (result i32)
    (local $shift i32) (local $bins i32) (local $t i32) (local $bin i32) (local $above i32) (local $c i32) (local $v i32)
    (local $sub i32)
    (block $fits
      (loop $l
        (br_if $fits (i32.lt_u (i32.shr_u (i32.sub (local.get $hi) (local.get $lo)) (local.get $shift)) (i32.const 4096)))
        (local.set $shift (i32.add (local.get $shift) (i32.const 1)))
        (br $l)))
    (local.set $bins (i32.add (i32.shr_u (i32.sub (local.get $hi) (local.get $lo)) (local.get $shift)) (i32.const 1)))
    ;; level 1: bins of 2^shift patterns
    (call $zero (local.get $hist) (local.get $bins))
    (local.set $t (i32.const 0))
    (block $d1
      (loop $l1
        (br_if $d1 (i32.ge_u (local.get $t) (local.get $n)))
        (local.set $v (i32.add (local.get $hist) (i32.shl
          (i32.shr_u (i32.sub (i32.load (i32.add (local.get $band) (i32.shl (local.get $t) (i32.const 2)))) (local.get $lo)) (local.get $shift))
          (i32.const 2))))
        (i32.store (local.get $v) (i32.add (i32.load (local.get $v)) (i32.const 1)))
        (local.set $t (i32.add (local.get $t) (i32.const 1)))
        (br $l1)))
    (local.set $bin (i32.sub (local.get $bins) (i32.const 1)))
    (block $f1
      (loop $s1
        (br_if $f1 (i32.eqz (local.get $bin)))
        (local.set $c (i32.load (i32.add (local.get $hist) (i32.shl (local.get $bin) (i32.const 2)))))
        (br_if $f1 (i32.ge_u (i32.add (local.get $above) (local.get $c)) (local.get $k)))
        (local.set $above (i32.add (local.get $above) (local.get $c)))
        (local.set $bin (i32.sub (local.get $bin) (i32.const 1)))
        (br $s1)))
    ;; level 2: the patterns of that bin, lo + bin·2^shift + sub
    (call $zero (local.get $hist) (i32.shl (i32.const 1) (local.get $shift)))
    (local.set $t (i32.const 0))
    (block $d2
      (loop $l2
        (br_if $d2 (i32.ge_u (local.get $t) (local.get $n)))
        (local.set $v (i32.sub (i32.load (i32.add (local.get $band) (i32.shl (local.get $t) (i32.const 2)))) (local.get $lo)))
        (if (i32.eq (i32.shr_u (local.get $v) (local.get $shift)) (local.get $bin))
          (then
            (local.set $v (i32.add (local.get $hist) (i32.shl
              (i32.and (local.get $v) (i32.sub (i32.shl (i32.const 1) (local.get $shift)) (i32.const 1)))
              (i32.const 2))))
            (i32.store (local.get $v) (i32.add (i32.load (local.get $v)) (i32.const 1)))))
        (local.set $t (i32.add (local.get $t) (i32.const 1)))
        (br $l2)))
    (local.set $sub (i32.sub (i32.shl (i32.const 1) (local.get $shift)) (i32.const 1)))
    (block $f2
      (loop $s2
        (br_if $f2 (i32.eqz (local.get $sub)))
        (local.set $c (i32.load (i32.add (local.get $hist) (i32.shl (local.get $sub) (i32.const 2)))))
        (br_if $f2 (i32.ge_u (i32.add (local.get $above) (local.get $c)) (local.get $k)))
        (local.set $above (i32.add (local.get $above) (local.get $c)))
        (local.set $sub (i32.sub (local.get $sub) (i32.const 1)))
        (br $s2)))
    (i32.store (local.get $res) (local.get $above))
    (i32.add (local.get $lo) (i32.or (i32.shl (local.get $bin) (local.get $shift)) (local.get $sub))))

  ;; The index of the nth (1-based) entry of band[0..n) equal to bits; when there are fewer, -1
  ;; minus how many there are.
  (func (export "nthequal") (param $band i32) (param $n i32) (param $bits i32) (param $nth i32) (result i32)
    (local $t i32) (local $seen i32)
    (block $none
      (loop $l
        (br_if $none (i32.ge_u (local.get $t) (local.get $n)))
        (if (i32.eq (i32.load (i32.add (local.get $band) (i32.shl (local.get $t) (i32.const 2)))) (local.get $bits))
          (then
            (local.set $seen (i32.add (local.get $seen) (i32.const 1)))
            (if (i32.eq (local.get $seen) (local.get $nth)) (then (return (local.get $t))))))
        (local.set $t (i32.add (local.get $t) (i32.const 1)))
        (br $l)))
    (i32.sub (i32.const -1) (local.get $seen)))

  ;; hist[0..n) = 0, four at a time (n is a multiple of 4 or less than 4 here: 4096 or a power of two).
  (func $zero (param $p i32) (param $n i32)
    (local $end i32)
    (local.set $end (i32.add (local.get $p) (i32.shl (local.get $n) (i32.const 2))))
    (block $d
      (loop $l
        (br_if $d (i32.ge_u (local.get $p) (local.get $end)))
        (v128.store (local.get $p) (v128.const i32x4 0 0 0 0))
        (local.set $p (i32.add (local.get $p) (i32.const 16)))
        (br $l))))
)
