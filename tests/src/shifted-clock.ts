/** The series clock tests move (coordinator MovableClock): real time plus an offset, timers fire when it passes them. */
export { MovableClock as ShiftedClock } from '@fedlhs/coordinator';
