//! Shared plotting support for reports and pictures (plotters, bitmap backend).
//!
//! The bitmap backend draws text with `ab_glyph` from a font registered at run time; the crate
//! embeds DejaVu Sans (`assets/fonts`, free licence in `DejaVuSans-LICENSE.txt`) so that plots
//! render the same on every machine, with no system font lookup.

use std::sync::Once;

use plotters::style::FontStyle;

/// The font family name every plot in this crate uses.
pub const FONT: &str = "sans-serif";

static DEJAVU_SANS: &[u8] = include_bytes!("../assets/fonts/DejaVuSans.ttf");
static REGISTER: Once = Once::new();

/// Registers the embedded font under [`FONT`] for every style. Call before drawing any text;
/// calling it again is free.
pub fn init_fonts() {
    REGISTER.call_once(|| {
        for style in [
            FontStyle::Normal,
            FontStyle::Bold,
            FontStyle::Italic,
            FontStyle::Oblique,
        ] {
            // The embedded font is a valid TrueType file (checked by the test below), so this
            // cannot fail at run time; if it ever did, text would be missing, not the plot.
            let _ = plotters::style::register_font(FONT, style, DEJAVU_SANS);
        }
    });
}

/// A qualitative palette (Tableau 10) for modes and series: colour `i` for mode `i`.
pub const PALETTE: [(u8, u8, u8); 10] = [
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
    (188, 189, 34),
    (23, 190, 207),
];

/// Colour of series or mode `i` (cycles through [`PALETTE`]).
pub fn colour(i: usize) -> plotters::style::RGBColor {
    let (r, g, b) = PALETTE[i % PALETTE.len()];
    plotters::style::RGBColor(r, g, b)
}

#[cfg(test)]
mod tests {
    use plotters::prelude::*;

    use super::*;

    #[test]
    fn embedded_font_is_valid_and_draws_text() {
        assert!(plotters::style::register_font("check", FontStyle::Normal, DEJAVU_SANS).is_ok());
        init_fonts();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.png");
        {
            let root = BitMapBackend::new(&path, (120, 40)).into_drawing_area();
            root.fill(&WHITE).unwrap();
            root.draw(&Text::new("mode", (5, 5), (FONT, 20).into_font()))
                .unwrap();
            root.present().unwrap();
        }
        assert!(std::fs::metadata(&path).unwrap().len() > 100);
    }
}
