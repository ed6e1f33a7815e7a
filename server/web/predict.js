// Client-side prediction of the player's own arena avatar: the server's
// newest state of it, plus arena's movement rule applied to every input
// the server has not reported yet (the client library's `pendingInputs`,
// inputs with a `seq` above the tick's `input_seq`).
//
// Arena (server/src/game/arena.rs) sets a player's velocity from its
// newest input each tick, then moves it by exactly `step_per_tick` of that
// velocity, clamped to the world; all in quantized units (1/16). The page
// sends one input a tick, so each pending input is one tick of movement:
// when the server's tick includes an input it leaves the list and the
// server's position already holds its step, so the prediction agrees with
// the server by construction and only jitter (an input that covers no
// tick, or two) shows as a one-step correction.

import { quantize, stepPerTick } from "./client/index.js";

/** Arena's fixed-point scale, world side and player speed (units per second). */
export const ARENA = Object.freeze({ scale: 16, worldQ: 16000, speed: 200 });

const FIXED = { fixed: ARENA.scale };

/** The quantized velocity arena gives a stick axis (-128 is read as -127). */
export function axisVelocity(move) {
  return quantize(FIXED, (Math.max(move, -127) / 127) * ARENA.speed);
}

/**
 * The predicted position, quantized, of an avatar at quantized `(x, y)` in
 * the server's newest state after `inputs` (each `{values: {move_x,
 * move_y}}`), one tick each, at `tickHz`.
 * @returns {{x: number, y: number}}
 */
export function predictArena(x, y, inputs, tickHz) {
  for (const input of inputs) {
    const vx = axisVelocity(input.values.move_x);
    const vy = axisVelocity(input.values.move_y);
    x = Math.min(ARENA.worldQ, Math.max(0, x + stepPerTick(vx, tickHz)));
    y = Math.min(ARENA.worldQ, Math.max(0, y + stepPerTick(vy, tickHz)));
  }
  return { x, y };
}

/**
 * Eases what is drawn towards the predicted position, so that a one-step
 * correction slides instead of jumping: the drawn offset from the target
 * halves every `halfLifeMs`; a jump over `snap` units (a respawn) is taken
 * at once.
 */
export class Smoother {
  constructor(halfLifeMs = 40, snap = 60) {
    this.halfLifeMs = halfLifeMs;
    this.snap = snap;
    this.x = null;
    this.y = null;
    this.at = 0;
  }

  /** The position to draw at `nowMs` for target `(x, y)` (real units). */
  follow(x, y, nowMs) {
    if (this.x === null || Math.hypot(x - this.x, y - this.y) > this.snap) {
      this.x = x;
      this.y = y;
    } else {
      const k = 1 - 0.5 ** (Math.max(0, nowMs - this.at) / this.halfLifeMs);
      this.x += (x - this.x) * k;
      this.y += (y - this.y) * k;
    }
    this.at = nowMs;
    return { x: this.x, y: this.y };
  }

  /** Forgets the drawn position (a new room). */
  reset() {
    this.x = null;
    this.y = null;
  }
}
