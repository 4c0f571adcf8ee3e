/**
 * MQTT topic-filter matching (`+` one level, `#` the rest), for routing the messages of one
 * client connection to the handlers of its subscriptions. A `$share/<group>/` prefix is not
 * part of the filter a message is matched against: the broker delivers the original topic.
 */
export function topicMatches(filter: string, topic: string): boolean {
  const f = filter.split('/');
  const t = topic.split('/');
  // Wildcards at the first level never match `$` topics (MQTT 3.1.1 4.7.2, MQTT 5 4.7.2).
  if (topic.startsWith('$') && (f[0] === '+' || f[0] === '#')) return false;
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '#') return true;
    if (i >= t.length) return false;
    if (f[i] !== '+' && f[i] !== t[i]) return false;
  }
  return f.length === t.length;
}

/** The filter of a shared subscription (`$share/<group>/<filter>`), so that every manager of a group shares it. */
export function sharedFilter(group: string, filter: string): string {
  if (!group || /[/+#]/.test(group)) throw new Error(`invalid shared-subscription group "${group}": it must be non-empty without '/', '+' or '#'`);
  return `$share/${group}/${filter}`;
}
