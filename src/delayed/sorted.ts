/**
 * Spool names in delivery order, as LON-CAPA writes them (`<epoch>.<n>.<pid>.<cmd>.<peer>`):
 * runs of digits compare as numbers, so `10.x` comes after `9.x`. Each name gets a sort
 * key once (digit runs padded to a fixed width, then plain string comparison), and the
 * keys stay in one sorted array: finding the next name is a binary search, adding or
 * removing one a search and a splice — never a pass over the whole backlog.
 */
export function sortKey(name: string): string {
  // Padding makes "9" < "10" as strings; the name itself breaks ties ("01" vs "1").
  return `${name.replace(/[0-9]+/g, (d) => (d.length >= 20 ? d : d.padStart(20, '0')))}\u0000${name}`;
}

const nameOf = (key: string): string => key.slice(key.indexOf('\u0000') + 1);

/**
 * The `limit` first names in delivery order among all those offered, holding at most
 * 2 × `limit` keys at any time: a scan of a directory of millions of names needs only the
 * oldest few to deliver next.
 */
export class FirstNames {
  private keys: string[] = [];
  /** Keys at or beyond this cannot be among the first `limit`. */
  private bound: string | undefined;
  /** Names offered. */
  offered = 0;

  constructor(private readonly limit: number) {}

  offer(name: string): void {
    this.offered++;
    const key = sortKey(name);
    if (this.bound !== undefined && key >= this.bound) return;
    this.keys.push(key);
    if (this.keys.length >= 2 * this.limit) this.trim();
  }

  /** The first names, in delivery order. */
  names(): string[] {
    this.trim();
    return this.keys.map(nameOf);
  }

  private trim(): void {
    this.keys.sort();
    if (this.keys.length > this.limit) {
      this.keys.length = this.limit;
      this.bound = this.keys[this.limit - 1];
    }
  }
}

export class SortedNames {
  private keys: string[] = [];
  private readonly names = new Map<string, string>();

  get size(): number {
    return this.keys.length;
  }

  insert(name: string): void {
    if (this.names.has(name)) return;
    const key = sortKey(name);
    this.names.set(name, key);
    const at = this.lowerBound(key);
    if (at === this.keys.length) this.keys.push(key);
    else this.keys.splice(at, 0, key);
  }

  /** Many at once (a scan): appended and sorted in one go instead of one splice each. */
  insertMany(names: Iterable<string>): void {
    let added = 0;
    for (const name of names) {
      if (this.names.has(name)) continue;
      const key = sortKey(name);
      this.names.set(name, key);
      this.keys.push(key);
      added++;
    }
    if (added > 0) this.keys.sort();
  }

  remove(name: string): void {
    const key = this.names.get(name);
    if (key === undefined) return;
    this.names.delete(name);
    const at = this.lowerBound(key);
    if (this.keys[at] === key) this.keys.splice(at, 1);
  }

  /** The first name after `name` in delivery order (the first of all without one). */
  after(name?: string): string | undefined {
    const at = name === undefined ? 0 : this.upperBound(sortKey(name));
    const key = this.keys[at];
    return key === undefined ? undefined : nameOf(key);
  }

  /** The last name in delivery order. */
  last(): string | undefined {
    const key = this.keys[this.keys.length - 1];
    return key === undefined ? undefined : nameOf(key);
  }

  /** Removes and returns the last name in delivery order. */
  removeLast(): string | undefined {
    const key = this.keys.pop();
    if (key === undefined) return undefined;
    const name = nameOf(key);
    this.names.delete(name);
    return name;
  }

  /** Whether `name` comes before the last name (it would displace it from a full index). */
  precedesLast(name: string): boolean {
    const key = this.keys[this.keys.length - 1];
    return key === undefined || sortKey(name) < key;
  }

  all(): string[] {
    return this.keys.map(nameOf);
  }

  private lowerBound(key: string): number {
    let lo = 0;
    let hi = this.keys.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.keys[mid] as string) < key) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  private upperBound(key: string): number {
    let lo = 0;
    let hi = this.keys.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.keys[mid] as string) <= key) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}
