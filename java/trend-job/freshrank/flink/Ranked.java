package freshrank.flink;

/** A tag in a subtask's top N at a tick, or (mark) a fired tick with its posts and the latest slice. */
public class Ranked implements java.io.Serializable {
    public boolean mark;
    public long tick;
    public String key;
    public String spelling;
    public long c;
    public long p;
    public long authors;
    public long authored;
    public long x;
    public double lam;
    public double z;
    public long posts;
    public long last;

    public Ranked() {}

    static Ranked mark(long tick, long posts, long last) {
        Ranked r = new Ranked();
        r.mark = true;
        r.tick = tick;
        r.posts = posts;
        r.last = last;
        return r;
    }

    /** Python's order of {@code (-z, -c, key)}: score descending, count descending, key by code points. */
    static int order(Ranked a, Ranked b) {
        int byZ = Double.compare(b.z, a.z);
        if (byZ != 0) {
            return byZ;
        }
        int byC = Long.compare(b.c, a.c);
        return byC != 0 ? byC : codePoints(a.key, b.key);
    }

    /** Python's string order (code points; Java's compareTo orders UTF-16 units). */
    static int codePoints(String a, String b) {
        int i = 0, j = 0;
        while (i < a.length() && j < b.length()) {
            int ca = a.codePointAt(i), cb = b.codePointAt(j);
            if (ca != cb) {
                return Integer.compare(ca, cb);
            }
            i += Character.charCount(ca);
            j += Character.charCount(cb);
        }
        return Integer.compare(a.length() - i, b.length() - j);
    }
}
