;; SIMD merge kernels (WebAssembly 128-bit SIMD), the hot loops of the two-model merges and the
;; finiteness check, over float32 tensors that live in the imported memory. Assembled into
;; merge-simd.wasm.ts by `npm run build:wasm` (scripts/build-wasm.mjs); simd.ts loads it.
;;
;; Every kernel computes exactly the float64 expressions of its JavaScript counterpart in
;; methods.ts (named beside it), in the same order, in f64x2 lanes, and rounds once to float32:
;; the outputs are bit for bit the same (test/unit/upit/merge-kernels.test.ts). Pointers are byte
;; offsets into the memory; n is a count of elements. The element-wise kernels take four elements
;; a step (one v128.load per input, widened into two f64x2 halves) and handle n rounded down to a
;; multiple of 4; the caller does the last few. Loads, stores and mask reads are written out in
;; each loop, not called: V8 does not inline WebAssembly calls, and a call per step cost more than
;; the arithmetic (measured: TIES 4.7 → 3.9 ns an element when its per-half function was inlined).
;;
;; Masks: bit (t & 31) of 32-bit word (t >> 5) keeps element t (t counted from the kernel's start),
;; as MaskStream and TrimStream pack them. A mask pointer of 0 means "all kept".
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

  ;; sumPair / sumPairDense: out = b + s·((k0·c0)·(x0 − b) + (k1·c1)·(x1 − b)), k_i ∈ {0, 1} from
  ;; the masks (k·c is c, or 0·c: +0 or −0 with c's sign, exactly as the scalar product). With no
  ;; masks (both pointers 0) every k is 1 and the coefficients are the c themselves.
  (func (export "sum2")
    (param $k0 i32) (param $k1 i32) (param $x0 i32) (param $x1 i32) (param $b i32) (param $out i32)
    (param $n i32) (param $c0 f64) (param $c1 f64) (param $s f64)
    (local $o i32) (local $t i32) (local $end i32) (local $sh v128)
    (local $vb v128) (local $v0 v128) (local $v1 v128) (local $bo v128) (local $r v128)
    (local $m0 v128) (local $m1 v128) (local $w0 v128) (local $w1 v128)
    (local $vc0 v128) (local $vc1 v128) (local $z0 v128) (local $z1 v128) (local $vs v128)
    (local.set $vc0 (f64x2.splat (local.get $c0)))
    (local.set $vc1 (f64x2.splat (local.get $c1)))
    (local.set $z0 (f64x2.splat (f64.mul (f64.const 0) (local.get $c0))))
    (local.set $z1 (f64x2.splat (f64.mul (f64.const 0) (local.get $c1))))
    (local.set $vs (f64x2.splat (local.get $s)))
    (local.set $end (i32.shl (i32.and (local.get $n) (i32.const -4)) (i32.const 2)))
    ;; all kept: the lane masks stay all ones
    (local.set $m0 (v128.const i32x4 -1 -1 -1 -1))
    (local.set $m1 (v128.const i32x4 -1 -1 -1 -1))
    (block $done
      (loop $l
        (br_if $done (i32.ge_u (local.get $o) (local.get $end)))
        (if (i32.or (local.get $k0) (local.get $k1))
          (then
            ;; bits t .. t + 3 of the masks' word (t >> 5): lanes of all ones where set
            (local.set $sh (i32x4.shl (v128.const i32x4 1 2 4 8) (i32.and (local.get $t) (i32.const 31))))
            (local.set $m0
              (v128.not (i32x4.eq (v128.and (local.get $sh)
                (i32x4.splat (i32.load (i32.add (local.get $k0) (i32.shl (i32.shr_u (local.get $t) (i32.const 5)) (i32.const 2))))))
                (v128.const i32x4 0 0 0 0))))
            (local.set $m1
              (v128.not (i32x4.eq (v128.and (local.get $sh)
                (i32x4.splat (i32.load (i32.add (local.get $k1) (i32.shl (i32.shr_u (local.get $t) (i32.const 5)) (i32.const 2))))))
                (v128.const i32x4 0 0 0 0))))))
        (local.set $vb (v128.load (i32.add (local.get $b) (local.get $o))))
        (local.set $v0 (v128.load (i32.add (local.get $x0) (local.get $o))))
        (local.set $v1 (v128.load (i32.add (local.get $x1) (local.get $o))))
        ;; lo half: elements 0, 1
        (local.set $w0 (v128.bitselect (local.get $vc0) (local.get $z0) (i64x2.extend_low_i32x4_s (local.get $m0))))
        (local.set $w1 (v128.bitselect (local.get $vc1) (local.get $z1) (i64x2.extend_low_i32x4_s (local.get $m1))))
        (local.set $bo (f64x2.promote_low_f32x4 (local.get $vb)))
        (local.set $r
          (f32x4.demote_f64x2_zero
            (f64x2.add (local.get $bo)
              (f64x2.mul (local.get $vs)
                (f64x2.add
                  (f64x2.mul (local.get $w0) (f64x2.sub (f64x2.promote_low_f32x4 (local.get $v0)) (local.get $bo)))
                  (f64x2.mul (local.get $w1) (f64x2.sub (f64x2.promote_low_f32x4 (local.get $v1)) (local.get $bo))))))))
        ;; hi half: elements 2, 3
        (local.set $w0 (v128.bitselect (local.get $vc0) (local.get $z0) (i64x2.extend_high_i32x4_s (local.get $m0))))
        (local.set $w1 (v128.bitselect (local.get $vc1) (local.get $z1) (i64x2.extend_high_i32x4_s (local.get $m1))))
        (local.set $bo (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 8 9 10 11 12 13 14 15 (local.get $vb) (local.get $vb))))
        (v128.store (i32.add (local.get $out) (local.get $o))
          (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23
            (local.get $r)
            (f32x4.demote_f64x2_zero
              (f64x2.add (local.get $bo)
                (f64x2.mul (local.get $vs)
                  (f64x2.add
                    (f64x2.mul (local.get $w0)
                      (f64x2.sub
                        (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 8 9 10 11 12 13 14 15 (local.get $v0) (local.get $v0)))
                        (local.get $bo)))
                    (f64x2.mul (local.get $w1)
                      (f64x2.sub
                        (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 8 9 10 11 12 13 14 15 (local.get $v1) (local.get $v1)))
                        (local.get $bo)))))))))
        (local.set $o (i32.add (local.get $o) (i32.const 16)))
        (local.set $t (i32.add (local.get $t) (i32.const 4)))
        (br $l))))

  ;; tiesPairFast (masks) / tiesPairTrimFast ($trim: keep = !(|δ| ≤ cut)), via tiesPairValue:
  ;;   τ_i = (keep_i·c_i)·δ_i, sg = 1 − 2·[τ0 + τ1 < 0], q_i = ½(sg·τ_i + |sg·τ_i|) (f64x2.max
  ;;   would give the same values but costs V8 several instructions for its NaN and −0 rules),
  ;;   v = sg·(q0 + q1), out = b + λ·v (mode 0), b + λ·(v·d_a) (mode 1), b + λ·(v / d_a) (mode 2),
  ;;   a = [q0 > 0] + 2·[q1 > 0]. Returns 0 when some value is not finite (Σ value·0 is NaN):
  ;;   the caller then recomputes the range with the reference kernel. The value's arithmetic is
  ;;   written out once per half (elements 0, 1 and 2, 3).
  (func (export "ties2")
    (param $trim i32) (param $pk0 i32) (param $pk1 i32) (param $cut0 f64) (param $cut1 f64)
    (param $x0 i32) (param $x1 i32) (param $b i32) (param $out i32) (param $n i32)
    (param $c0 f64) (param $c1 f64) (param $lambda f64) (param $mode i32)
    (param $d0 f64) (param $d1 f64) (param $d2 f64) (param $d3 f64)
    (result i32)
    (local $o i32) (local $t i32) (local $end i32) (local $sh v128)
    (local $vb v128) (local $v0 v128) (local $v1 v128) (local $bo v128) (local $e0 v128) (local $e1 v128)
    (local $m0 v128) (local $m1 v128) (local $k0 v128) (local $k1 v128) (local $rlo v128) (local $rhi v128)
    (local $tau0 v128) (local $tau1 v128) (local $sg v128) (local $y v128) (local $q0 v128) (local $q1 v128)
    (local $v v128) (local $a0 v128) (local $bad v128)
    (local $vc0 v128) (local $vc1 v128) (local $z0 v128) (local $z1 v128) (local $vcut0 v128) (local $vcut1 v128)
    (local $vl v128) (local $vd0 v128) (local $vd1 v128) (local $vd2 v128) (local $vd3 v128)
    (local.set $vc0 (f64x2.splat (local.get $c0)))
    (local.set $vc1 (f64x2.splat (local.get $c1)))
    (local.set $z0 (f64x2.splat (f64.mul (f64.const 0) (local.get $c0))))
    (local.set $z1 (f64x2.splat (f64.mul (f64.const 0) (local.get $c1))))
    (local.set $vcut0 (f64x2.splat (local.get $cut0)))
    (local.set $vcut1 (f64x2.splat (local.get $cut1)))
    (local.set $vl (f64x2.splat (local.get $lambda)))
    (local.set $vd0 (f64x2.splat (local.get $d0)))
    (local.set $vd1 (f64x2.splat (local.get $d1)))
    (local.set $vd2 (f64x2.splat (local.get $d2)))
    (local.set $vd3 (f64x2.splat (local.get $d3)))
    (local.set $end (i32.shl (i32.and (local.get $n) (i32.const -4)) (i32.const 2)))
    (block $done
      (loop $l
        (br_if $done (i32.ge_u (local.get $o) (local.get $end)))
        (local.set $vb (v128.load (i32.add (local.get $b) (local.get $o))))
        (local.set $v0 (v128.load (i32.add (local.get $x0) (local.get $o))))
        (local.set $v1 (v128.load (i32.add (local.get $x1) (local.get $o))))
        (if (i32.eqz (local.get $trim))
          (then
            ;; bits t .. t + 3 of the masks' word (t >> 5): i32 lanes of all ones where set
            (local.set $sh (i32x4.shl (v128.const i32x4 1 2 4 8) (i32.and (local.get $t) (i32.const 31))))
            (local.set $m0
              (v128.not (i32x4.eq (v128.and (local.get $sh)
                (i32x4.splat (i32.load (i32.add (local.get $pk0) (i32.shl (i32.shr_u (local.get $t) (i32.const 5)) (i32.const 2))))))
                (v128.const i32x4 0 0 0 0))))
            (local.set $m1
              (v128.not (i32x4.eq (v128.and (local.get $sh)
                (i32x4.splat (i32.load (i32.add (local.get $pk1) (i32.shl (i32.shr_u (local.get $t) (i32.const 5)) (i32.const 2))))))
                (v128.const i32x4 0 0 0 0))))))
        ;; lo half: elements 0, 1
        (local.set $bo (f64x2.promote_low_f32x4 (local.get $vb)))
        (local.set $e0 (f64x2.sub (f64x2.promote_low_f32x4 (local.get $v0)) (local.get $bo)))
        (local.set $e1 (f64x2.sub (f64x2.promote_low_f32x4 (local.get $v1)) (local.get $bo)))
        (if (local.get $trim)
          (then
            (local.set $k0 (v128.not (f64x2.le (f64x2.abs (local.get $e0)) (local.get $vcut0))))
            (local.set $k1 (v128.not (f64x2.le (f64x2.abs (local.get $e1)) (local.get $vcut1)))))
          (else
            (local.set $k0 (i64x2.extend_low_i32x4_s (local.get $m0)))
            (local.set $k1 (i64x2.extend_low_i32x4_s (local.get $m1)))))
        (local.set $tau0 (f64x2.mul (v128.bitselect (local.get $vc0) (local.get $z0) (local.get $k0)) (local.get $e0)))
        (local.set $tau1 (f64x2.mul (v128.bitselect (local.get $vc1) (local.get $z1) (local.get $k1)) (local.get $e1)))
        (local.set $sg
          (v128.bitselect
            (v128.const f64x2 -1 -1)
            (v128.const f64x2 1 1)
            (f64x2.lt (f64x2.add (local.get $tau0) (local.get $tau1)) (v128.const f64x2 0 0))))
        (local.set $y (f64x2.mul (local.get $sg) (local.get $tau0)))
        (local.set $q0 (f64x2.mul (v128.const f64x2 0.5 0.5) (f64x2.add (local.get $y) (f64x2.abs (local.get $y)))))
        (local.set $y (f64x2.mul (local.get $sg) (local.get $tau1)))
        (local.set $q1 (f64x2.mul (v128.const f64x2 0.5 0.5) (f64x2.add (local.get $y) (f64x2.abs (local.get $y)))))
        (local.set $v (f64x2.mul (local.get $sg) (f64x2.add (local.get $q0) (local.get $q1))))
        (if (local.get $mode)
          (then
            (local.set $a0 (f64x2.gt (local.get $q0) (v128.const f64x2 0 0)))
            (local.set $y
              (v128.bitselect
                (v128.bitselect (local.get $vd3) (local.get $vd2) (local.get $a0))
                (v128.bitselect (local.get $vd1) (local.get $vd0) (local.get $a0))
                (f64x2.gt (local.get $q1) (v128.const f64x2 0 0))))
            (local.set $v
              (if (result v128) (i32.eq (local.get $mode) (i32.const 1))
                (then (f64x2.mul (local.get $v) (local.get $y)))
                (else (f64x2.div (local.get $v) (local.get $y)))))))
        (local.set $rlo (f64x2.add (local.get $bo) (f64x2.mul (local.get $vl) (local.get $v))))
        (local.set $bad (f64x2.add (local.get $bad) (f64x2.mul (local.get $rlo) (v128.const f64x2 0 0))))
        ;; hi half: elements 2, 3 (the same arithmetic)
        (local.set $bo (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 8 9 10 11 12 13 14 15 (local.get $vb) (local.get $vb))))
        (local.set $e0 (f64x2.sub (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 8 9 10 11 12 13 14 15 (local.get $v0) (local.get $v0))) (local.get $bo)))
        (local.set $e1 (f64x2.sub (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 8 9 10 11 12 13 14 15 (local.get $v1) (local.get $v1))) (local.get $bo)))
        (if (local.get $trim)
          (then
            (local.set $k0 (v128.not (f64x2.le (f64x2.abs (local.get $e0)) (local.get $vcut0))))
            (local.set $k1 (v128.not (f64x2.le (f64x2.abs (local.get $e1)) (local.get $vcut1)))))
          (else
            (local.set $k0 (i64x2.extend_high_i32x4_s (local.get $m0)))
            (local.set $k1 (i64x2.extend_high_i32x4_s (local.get $m1)))))
        (local.set $tau0 (f64x2.mul (v128.bitselect (local.get $vc0) (local.get $z0) (local.get $k0)) (local.get $e0)))
        (local.set $tau1 (f64x2.mul (v128.bitselect (local.get $vc1) (local.get $z1) (local.get $k1)) (local.get $e1)))
        (local.set $sg
          (v128.bitselect
            (v128.const f64x2 -1 -1)
            (v128.const f64x2 1 1)
            (f64x2.lt (f64x2.add (local.get $tau0) (local.get $tau1)) (v128.const f64x2 0 0))))
        (local.set $y (f64x2.mul (local.get $sg) (local.get $tau0)))
        (local.set $q0 (f64x2.mul (v128.const f64x2 0.5 0.5) (f64x2.add (local.get $y) (f64x2.abs (local.get $y)))))
        (local.set $y (f64x2.mul (local.get $sg) (local.get $tau1)))
        (local.set $q1 (f64x2.mul (v128.const f64x2 0.5 0.5) (f64x2.add (local.get $y) (f64x2.abs (local.get $y)))))
        (local.set $v (f64x2.mul (local.get $sg) (f64x2.add (local.get $q0) (local.get $q1))))
        (if (local.get $mode)
          (then
            (local.set $a0 (f64x2.gt (local.get $q0) (v128.const f64x2 0 0)))
            (local.set $y
              (v128.bitselect
                (v128.bitselect (local.get $vd3) (local.get $vd2) (local.get $a0))
                (v128.bitselect (local.get $vd1) (local.get $vd0) (local.get $a0))
                (f64x2.gt (local.get $q1) (v128.const f64x2 0 0))))
            (local.set $v
              (if (result v128) (i32.eq (local.get $mode) (i32.const 1))
                (then (f64x2.mul (local.get $v) (local.get $y)))
                (else (f64x2.div (local.get $v) (local.get $y)))))))
        (local.set $rhi (f64x2.add (local.get $bo) (f64x2.mul (local.get $vl) (local.get $v))))
        (local.set $bad (f64x2.add (local.get $bad) (f64x2.mul (local.get $rhi) (v128.const f64x2 0 0))))
        (v128.store (i32.add (local.get $out) (local.get $o))
          (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23
            (f32x4.demote_f64x2_zero (local.get $rlo))
            (f32x4.demote_f64x2_zero (local.get $rhi))))
        (local.set $o (i32.add (local.get $o) (i32.const 16)))
        (local.set $t (i32.add (local.get $t) (i32.const 4)))
        (br $l)))
    (i32.and
      (f64.eq (f64x2.extract_lane 0 (local.get $bad)) (f64.const 0))
      (f64.eq (f64x2.extract_lane 1 (local.get $bad)) (f64.const 0))))

  ;; planTrimBand's pass (sparsify.ts) over elements 0..n rounded down to even: with a = |x − b|
  ;; in float64, counts the a with !(a ≤ H) (NaN included) and, where L < a ≤ H, appends fround(a)
  ;; to band and the index to at (at most cap of them). Near-band elements are rare (a few %), so
  ;; a cheap lane test |a − mid| ≤ h guards the scalar collection. Writes the count above and the
  ;; band's length (−1 if it would pass cap) as i32 at res, res + 4.
  (global $L (mut f64) (f64.const 0))
  (global $H (mut f64) (f64.const 0))
  (global $band (mut i32) (i32.const 0))
  (global $at (mut i32) (i32.const 0))
  (global $cap (mut i32) (i32.const 0))
  (global $nb (mut i32) (i32.const 0))

  ;; One near-band candidate: appended when L < a ≤ H; 0 when the band is full.
  (func $collect (param $a f64) (param $i i32) (result i32)
    (if (i32.and (f64.gt (local.get $a) (global.get $L)) (f64.le (local.get $a) (global.get $H)))
      (then
        (if (i32.eq (global.get $nb) (global.get $cap)) (then (return (i32.const 0))))
        (f32.store (i32.add (global.get $band) (i32.shl (global.get $nb) (i32.const 2))) (f32.demote_f64 (local.get $a)))
        (i32.store (i32.add (global.get $at) (i32.shl (global.get $nb) (i32.const 2))) (local.get $i))
        (global.set $nb (i32.add (global.get $nb) (i32.const 1)))))
    (i32.const 1))

  (func (export "trimband")
    (param $x i32) (param $b i32) (param $n i32)
    (param $lo f64) (param $hi f64) (param $mid f64) (param $h f64)
    (param $band i32) (param $at i32) (param $cap i32) (param $res i32)
    (local $o i32) (local $i i32) (local $end i32) (local $a v128) (local $above v128)
    (local $vH v128) (local $vmid v128) (local $vh v128)
    (global.set $L (local.get $lo))
    (global.set $H (local.get $hi))
    (global.set $band (local.get $band))
    (global.set $at (local.get $at))
    (global.set $cap (local.get $cap))
    (global.set $nb (i32.const 0))
    (local.set $vH (f64x2.splat (local.get $hi)))
    (local.set $vmid (f64x2.splat (local.get $mid)))
    (local.set $vh (f64x2.splat (local.get $h)))
    (local.set $end (i32.shl (i32.and (local.get $n) (i32.const -2)) (i32.const 2)))
    (block $done
      (loop $l
        (br_if $done (i32.ge_u (local.get $o) (local.get $end)))
        (local.set $a
          (f64x2.abs
            (f64x2.sub
              (f64x2.promote_low_f32x4 (v128.load64_zero (i32.add (local.get $x) (local.get $o))))
              (f64x2.promote_low_f32x4 (v128.load64_zero (i32.add (local.get $b) (local.get $o)))))))
        ;; a lane's mask is −1 where a is above: subtracting it counts one
        (local.set $above (i64x2.sub (local.get $above) (v128.not (f64x2.le (local.get $a) (local.get $vH)))))
        (if (v128.any_true (f64x2.le (f64x2.abs (f64x2.sub (local.get $a) (local.get $vmid))) (local.get $vh)))
          (then
            (if (i32.eqz (call $collect (f64x2.extract_lane 0 (local.get $a)) (local.get $i)))
              (then (global.set $nb (i32.const -1)) (br $done)))
            (if (i32.eqz (call $collect (f64x2.extract_lane 1 (local.get $a)) (i32.add (local.get $i) (i32.const 1))))
              (then (global.set $nb (i32.const -1)) (br $done)))))
        (local.set $o (i32.add (local.get $o) (i32.const 8)))
        (local.set $i (i32.add (local.get $i) (i32.const 2)))
        (br $l)))
    (i32.store (local.get $res)
      (i32.wrap_i64 (i64.add (i64x2.extract_lane 0 (local.get $above)) (i64x2.extract_lane 1 (local.get $above)))))
    (i32.store offset=4 (local.get $res) (global.get $nb)))
)
