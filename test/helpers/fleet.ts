/** What the fleet lab tests share: a small suite template (two tcp sessions, one of them with a 1 s TCP user timeout, so each blackout length has a verdict to give). */
export const fleetSuiteTemplate = (label: string, lengths: string[]) => `name: "{{application}} ${label}"
probes:
  - { name: echo, kind: tcp, interval: 100ms }
  - { name: echo-ut1s, kind: tcp, interval: 100ms, userTimeout: 1s }
injector: { kind: cable-pull }
blackouts: [${lengths.join(', ')}]
warmup: 1s
recovery: 6s
`;
