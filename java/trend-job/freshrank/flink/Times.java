package freshrank.flink;

/**
 * Epoch milliseconds of the {@code created_at} forms that are certain without Python (a port of the compiled
 * reader's {@code epoch_ms}): integers (seconds below 1e11, else ms) and {@code YYYY-MM-DDTHH:MM:SS[.mmm]Z}.
 * {@link Long#MIN_VALUE}: let Python's {@code parse_time_ms} decide.
 */
public final class Times {
    public static final long UNKNOWN = Long.MIN_VALUE;
    static final long SECONDS_BELOW = 100_000_000_000L;
    static final long MAX_MS = 1L << 62;

    private Times() {}

    /** An integral JSON number: seconds below 1e11, else ms. */
    public static long epoch(long value) {
        long ms = -SECONDS_BELOW < value && value < SECONDS_BELOW ? value * 1000 : value;
        return -MAX_MS < ms && ms < MAX_MS ? ms : UNKNOWN;
    }

    private static int number(String s, int from, int to) {
        int n = 0;
        for (int i = from; i < to; i++) {
            char d = s.charAt(i);
            if (d < '0' || d > '9') {
                return -1;
            }
            n = n * 10 + (d - '0');
        }
        return n;
    }

    /** {@code YYYY-MM-DDTHH:MM:SS[.mmm]Z} (a valid date and time) to epoch ms, or UNKNOWN. */
    public static long iso(String s) {
        int len = s.length();
        int millis;
        if (len == 20) {
            millis = 0;
        } else if (len == 24 && s.charAt(19) == '.') {
            millis = number(s, 20, 23);
        } else {
            return UNKNOWN;
        }
        if (millis < 0 || s.charAt(4) != '-' || s.charAt(7) != '-' || s.charAt(10) != 'T' || s.charAt(13) != ':'
                || s.charAt(16) != ':' || s.charAt(len - 1) != 'Z') {
            return UNKNOWN;
        }
        long year = number(s, 0, 4), month = number(s, 5, 7), day = number(s, 8, 10);
        long hour = number(s, 11, 13), minute = number(s, 14, 16), second = number(s, 17, 19);
        if (year < 1 || month < 1 || month > 12 || day < 1 || hour < 0 || minute < 0 || second < 0) {
            return UNKNOWN;
        }
        boolean leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
        int[] monthDays = {31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
        if (day > monthDays[(int) month - 1] || hour > 23 || minute > 59 || second > 59) {
            return UNKNOWN;
        }
        long y = month <= 2 ? year - 1 : year;
        long era = Math.floorDiv(y, 400);
        long yoe = y - era * 400;
        long doy = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
        long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        long days = era * 146_097 + doe - 719_468;
        return ((days * 24 + hour) * 60 + minute) * 60_000 + second * 1000 + millis;
    }
}
