/** A signed number with three decimals (+0.012, -0.340): differences in the reports. */
export const signed = (x: number): string => `${x >= 0 ? '+' : ''}${x.toFixed(3)}`;
