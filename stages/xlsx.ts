/**
 * A small SpreadsheetML (.xlsx) writer for the release workbook (stages/excel.ts).
 *
 * Why not exceljs: a year's workbook has ~100 000 cells, and exceljs spends ~0.3 s of CPU on its cell/row
 * models, per-cell style resolution and XML built from millions of small strings, plus JSZip's streaming
 * (pure-JS CRC, chunked deflate). This writer emits the same parts as one string each and zips them itself.
 *
 * The bytes are exactly those exceljs 4.4 writes for the features used here — text cells (shared strings) and
 * number cells, cell and row styles made of a number format, a font (bold / italic / size) and an alignment
 * (wrap text, vertical), column widths, frozen header rows — zipped as JSZip 3 zips them (entries in the same
 * order with their folder entries, no data descriptors, deflate of pako 1.0 at the default level, which is
 * zlib 1.2.8's; Node's own zlib gives different bytes). test/excel.test.ts checks byte equality against
 * exceljs for several workbooks; anything beyond these features needs exceljs again (or that test extended).
 */
import * as zlib from 'node:zlib';

// pako is the deflate JSZip uses (a port of zlib 1.2.8): the same compressed bytes as before.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const pako = require('pako') as { deflateRaw(data: Uint8Array): Uint8Array };
// exceljs's default theme part, verbatim
// eslint-disable-next-line @typescript-eslint/no-require-imports
const THEME1 = require('exceljs/lib/xlsx/xml/theme1.js') as string;

export interface XlsxFont { bold?: boolean; italic?: boolean; size?: number }
export interface XlsxStyle { numFmt?: string; font?: XlsxFont; alignment?: { wrapText?: boolean; vertical?: 'top' | 'middle' | 'bottom' } }
/** A string becomes a shared string, a number a number cell. */
export interface XlsxCell { value: string | number; style?: XlsxStyle }
/** Cells from column A on, without gaps. */
export interface XlsxRow { style?: XlsxStyle; cells: XlsxCell[] }
export interface XlsxSheet {
  name: string;
  /** rows 1… without gaps */
  rows: XlsxRow[];
  /** width of columns 1…, in characters */
  widths: number[];
  /** rows frozen at the top (0: none) */
  frozenRows: number;
}
export interface XlsxProps { creator: string; lastModifiedBy: string; created: Date; modified: Date }

/** exceljs's utils.xmlEncode: escape the five XML characters, drop control characters XML cannot carry. */
export function xmlEncode(s: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: the control characters are what is dropped
  if (!/["&'<>\x00-\x08\x0b\x0c\x0e-\x1f\x7f]/.test(s)) return s;
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 34) out += '&quot;';
    else if (c === 38) out += '&amp;';
    else if (c === 39) out += '&apos;';
    else if (c === 60) out += '&lt;';
    else if (c === 62) out += '&gt;';
    else if (c === 127 || (c <= 31 && (c <= 8 || (c >= 11 && c !== 13)))) continue;
    else out += s[i];
  }
  return out;
}

/** Built-in number formats (ECMA-376 §18.8.30) that exceljs maps to their ids; others get ids from 164 on. */
const BUILTIN_NUMFMTS: Record<string, number> = {
  General: 0, '0': 1, '0.00': 2, '#,##0': 3, '#,##0.00': 4, '0%': 9, '0.00%': 10, '0.00E+00': 11, '# ?/?': 12, '# ??/??': 13,
  'mm-dd-yy': 14, 'd-mmm-yy': 15, 'd-mmm': 16, 'mmm-yy': 17, 'h:mm AM/PM': 18, 'h:mm:ss AM/PM': 19, 'h:mm': 20, 'h:mm:ss': 21,
  'm/d/yy "h":mm': 22, '#,##0 ;(#,##0)': 37, '#,##0 ;[Red](#,##0)': 38, '#,##0.00 ;(#,##0.00)': 39, '#,##0.00 ;[Red](#,##0.00)': 40,
  'mm:ss': 45, '[h]:mm:ss': 46, 'mmss.0': 47, '##0.0E+0': 48, '@': 49,
};
const DEFAULT_FONT = '<font><color theme="1"/><family val="2"/><scheme val="minor"/><sz val="11"/><name val="Calibri"/></font>';

/**
 * The style table (styles.xml) as exceljs's style manager builds it: fonts, custom number formats and cell
 * formats (xf) are deduplicated by their XML and numbered in order of first use. Style objects are
 * usually shared, so each object's id is remembered.
 */
class StyleTable {
  private readonly fonts = [DEFAULT_FONT];
  private readonly numFmts: string[] = [];
  private readonly customNumFmts = new Map<string, number>();
  private readonly xfs = ['<xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'];
  private readonly ids = new WeakMap<XlsxStyle, number>();

  id(style: XlsxStyle | undefined): number {
    if (!style) return 0;
    let id = this.ids.get(style);
    if (id === undefined) this.ids.set(style, (id = this.add(style)));
    return id;
  }

  private add(style: XlsxStyle): number {
    const numFmtId = style.numFmt === undefined ? 0 : this.numFmtId(style.numFmt);
    const fontId = style.font ? indexOf(this.fonts, fontXml(style.font)) : 0;
    const a = style.alignment;
    const alignment = a && (a.vertical || a.wrapText) ? `<alignment${a.vertical ? ` vertical="${a.vertical}"` : ''}${a.wrapText ? ' wrapText="1"' : ''}/>` : '';
    const xf = `<xf numFmtId="${numFmtId}" fontId="${fontId}" fillId="0" borderId="0" xfId="0"${numFmtId ? ' applyNumberFormat="1"' : ''}${fontId ? ' applyFont="1"' : ''}${a ? ' applyAlignment="1"' : ''}${alignment ? `>${alignment}</xf>` : '/>'}`;
    return indexOf(this.xfs, xf);
  }

  private numFmtId(code: string): number {
    let id = BUILTIN_NUMFMTS[code] ?? this.customNumFmts.get(code);
    if (id === undefined) {
      this.customNumFmts.set(code, (id = 164 + this.numFmts.length));
      this.numFmts.push(`<numFmt numFmtId="${id}" formatCode="${xmlEncode(code)}"/>`);
    }
    return id;
  }

  xml(): string {
    return `${XML_DECL}<styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:mc="http://schemas.openxmlformats.org/markup-compatibility/2006" mc:Ignorable="x14ac x16r2" xmlns:x14ac="http://schemas.microsoft.com/office/spreadsheetml/2009/9/ac" xmlns:x16r2="http://schemas.microsoft.com/office/spreadsheetml/2015/02/main">${
      this.numFmts.length ? `<numFmts count="${this.numFmts.length}">${this.numFmts.join('')}</numFmts>` : ''
    }<fonts count="${this.fonts.length}" x14ac:knownFonts="1">${this.fonts.join('')}</fonts><fills count="2"><fill><patternFill patternType="none"/></fill><fill><patternFill patternType="gray125"/></fill></fills><borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders><cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs><cellXfs count="${this.xfs.length}">${this.xfs.join('')}</cellXfs><cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles><dxfs count="0"/><tableStyles count="0" defaultTableStyle="TableStyleMedium2" defaultPivotStyle="PivotStyleLight16"/><extLst><ext uri="{EB79DEF2-80B8-43e5-95BD-54CBDDF9020C}" xmlns:x14="http://schemas.microsoft.com/office/spreadsheetml/2009/9/main"><x14:slicerStyles defaultSlicerStyle="SlicerStyleLight1"/></ext><ext uri="{9260A510-F301-46a8-8635-F512D64BE5F5}" xmlns:x15="http://schemas.microsoft.com/office/spreadsheetml/2010/11/main"><x15:timelineStyles defaultTimelineStyle="TimeSlicerStyleLight1"/></ext></extLst></styleSheet>`;
  }
}

function fontXml(f: XlsxFont): string {
  return `<font>${f.bold ? '<b/>' : ''}${f.italic ? '<i/>' : ''}${f.size ? `<sz val="${f.size}"/>` : ''}</font>`;
}

/** Index of `x` in `list`, appended if new. */
function indexOf(list: string[], x: string): number {
  const i = list.indexOf(x);
  if (i >= 0) return i;
  list.push(x);
  return list.length - 1;
}

/** Shared strings (sharedStrings.xml), numbered in order of first use; `count` counts every use. */
class SharedStrings {
  private readonly index = new Map<string, number>();
  private readonly values: string[] = [];
  private count = 0;
  id(s: string): number {
    this.count++;
    let i = this.index.get(s);
    if (i === undefined) {
      this.index.set(s, (i = this.values.length));
      this.values.push(s);
    }
    return i;
  }
  xml(): string {
    let out = `${XML_DECL}<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="${this.count}" uniqueCount="${this.values.length}">`;
    for (const s of this.values) out += `<si><t${/^\s|\n|\s$/.test(s) ? ' xml:space="preserve"' : ''}>${xmlEncode(s)}</t></si>`;
    return `${out}</sst>`;
  }
}

const EXCELJS_DEFAULT_WIDTH = 9;
const XML_DECL = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n';

/** Column letters of 1-based column n (1 → A, 27 → AA). */
function colName(n: number): string {
  let s = '';
  for (; n > 0; n = Math.floor((n - 1) / 26)) s = String.fromCharCode(65 + ((n - 1) % 26)) + s;
  return s;
}

/** One worksheet part. Styles and shared strings are numbered while the sheets are written, in sheet order. */
function sheetXml(sh: XlsxSheet, styles: StyleTable, strings: SharedStrings): string {
  const letters: string[] = [];
  const maxCols = Math.max(sh.widths.length, ...sh.rows.map((r) => r.cells.length));
  for (let c = 1; c <= maxCols; c++) letters.push(colName(c));
  const cellCols = Math.max(0, ...sh.rows.map((r) => r.cells.length));
  let out = `${XML_DECL}<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships" xmlns:mc="http://schemas.openxmlformats.org/markup-compatibility/2006" mc:Ignorable="x14ac" xmlns:x14ac="http://schemas.microsoft.com/office/spreadsheetml/2009/9/ac">`;
  out += `<dimension ref="${sh.rows.length && cellCols ? `A1:${letters[cellCols - 1]}${sh.rows.length}` : 'A1'}"/>`;
  if (sh.frozenRows) {
    out += `<sheetViews><sheetView workbookViewId="0"><pane ySplit="${sh.frozenRows}" topLeftCell="A${sh.frozenRows + 1}" activePane="bottomLeft" state="frozen"/><selection pane="bottomLeft"/></sheetView></sheetViews>`;
  }
  out += '<sheetFormatPr defaultRowHeight="15" outlineLevelRow="0" outlineLevelCol="0" x14ac:dyDescent="55"/>';
  // Adjacent columns of the same width share one <col> element; exceljs leaves out columns of its default
  // width 9 (and an empty <cols>).
  let cols = '';
  for (let c = 0; c < sh.widths.length;) {
    let e = c;
    while (e + 1 < sh.widths.length && sh.widths[e + 1] === sh.widths[c]) e++;
    if (sh.widths[c] !== EXCELJS_DEFAULT_WIDTH) cols += `<col min="${c + 1}" max="${e + 1}" width="${sh.widths[c]}" customWidth="1"/>`;
    c = e + 1;
  }
  if (cols) out += `<cols>${cols}</cols>`;
  out += '<sheetData>';
  for (let r = 0; r < sh.rows.length; r++) {
    const row = sh.rows[r]!;
    const n = r + 1;
    const rs = styles.id(row.style);
    out += `<row r="${n}"${row.cells.length ? ` spans="1:${row.cells.length}"` : ''}${rs ? ` s="${rs}" customFormat="1"` : ''} x14ac:dyDescent="0.25">`;
    for (let c = 0; c < row.cells.length; c++) {
      const cell = row.cells[c]!;
      const s = styles.id(cell.style);
      out += `<c r="${letters[c]}${n}"${s ? ` s="${s}"` : ''}`;
      out += typeof cell.value === 'number' ? `><v>${cell.value}</v></c>` : ` t="s"><v>${strings.id(cell.value)}</v></c>`;
    }
    out += '</row>';
  }
  return `${out}</sheetData><pageMargins left="0.7" right="0.7" top="0.75" bottom="0.75" header="0.3" footer="0.3"/><pageSetup orientation="portrait" horizontalDpi="4294967295" verticalDpi="4294967295" scale="100" fitToWidth="1" fitToHeight="1"/></worksheet>`;
}

const W3CDTF = (d: Date): string => d.toISOString().replace(/\.\d{3}Z$/, 'Z');

export function writeXlsx(sheets: XlsxSheet[], props: XlsxProps): Buffer {
  const styles = new StyleTable();
  const strings = new SharedStrings();
  const sheetParts = sheets.map((sh) => sheetXml(sh, styles, strings));
  const n = sheets.length;
  const names = sheets.map((s) => xmlEncode(s.name));
  const rel = (id: number, type: string, target: string): string => `<Relationship Id="rId${id}" Type="${type}" Target="${target}"/>`;
  const OD = 'http://schemas.openxmlformats.org/officeDocument/2006/relationships';
  const CT = 'application/vnd.openxmlformats-officedocument';
  const parts: [string, string][] = [
    ['[Content_Types].xml', `${XML_DECL}<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="${CT}.spreadsheetml.sheet.main+xml"/>${
      sheets.map((_, i) => `<Override PartName="/xl/worksheets/sheet${i + 1}.xml" ContentType="${CT}.spreadsheetml.worksheet+xml"/>`).join('')
    }<Override PartName="/xl/theme/theme1.xml" ContentType="${CT}.theme+xml"/><Override PartName="/xl/styles.xml" ContentType="${CT}.spreadsheetml.styles+xml"/><Override PartName="/xl/sharedStrings.xml" ContentType="${CT}.spreadsheetml.sharedStrings+xml"/><Default Extension="vml" ContentType="${CT}.vmlDrawing"/><Override PartName="/docProps/core.xml" ContentType="application/vnd.openxmlformats-package.core-properties+xml"/><Override PartName="/docProps/app.xml" ContentType="${CT}.extended-properties+xml"/></Types>`],
    ['_rels/.rels', `${XML_DECL}<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">${rel(1, `${OD}/officeDocument`, 'xl/workbook.xml')}${rel(2, 'http://schemas.openxmlformats.org/package/2006/relationships/metadata/core-properties', 'docProps/core.xml')}${rel(3, `${OD}/extended-properties`, 'docProps/app.xml')}</Relationships>`],
    ['xl/_rels/workbook.xml.rels', `${XML_DECL}<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">${rel(1, `${OD}/styles`, 'styles.xml')}${rel(2, `${OD}/theme`, 'theme/theme1.xml')}${rel(3, `${OD}/sharedStrings`, 'sharedStrings.xml')}${
      sheets.map((_, i) => rel(i + 4, `${OD}/worksheet`, `worksheets/sheet${i + 1}.xml`)).join('')
    }</Relationships>`],
    ...sheetParts.map((x, i): [string, string] => [`xl/worksheets/sheet${i + 1}.xml`, x]),
    ['xl/sharedStrings.xml', strings.xml()],
    ['xl/theme/theme1.xml', THEME1],
    ['xl/styles.xml', styles.xml()],
    ['docProps/app.xml', `${XML_DECL}<Properties xmlns="http://schemas.openxmlformats.org/officeDocument/2006/extended-properties" xmlns:vt="http://schemas.openxmlformats.org/officeDocument/2006/docPropsVTypes"><Application>Microsoft Excel</Application><DocSecurity>0</DocSecurity><ScaleCrop>false</ScaleCrop><HeadingPairs><vt:vector size="2" baseType="variant"><vt:variant><vt:lpstr>Worksheets</vt:lpstr></vt:variant><vt:variant><vt:i4>${n}</vt:i4></vt:variant></vt:vector></HeadingPairs><TitlesOfParts><vt:vector size="${n}" baseType="lpstr">${
      names.map((s) => `<vt:lpstr>${s}</vt:lpstr>`).join('')
    }</vt:vector></TitlesOfParts><Company></Company><Manager></Manager><LinksUpToDate>false</LinksUpToDate><SharedDoc>false</SharedDoc><HyperlinksChanged>false</HyperlinksChanged><AppVersion>16.0300</AppVersion></Properties>`],
    ['docProps/core.xml', `${XML_DECL}<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties" xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:dcterms="http://purl.org/dc/terms/" xmlns:dcmitype="http://purl.org/dc/dcmitype/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><dc:creator>${xmlEncode(props.creator)}</dc:creator><dc:title></dc:title><dc:subject></dc:subject><dc:description></dc:description><cp:keywords></cp:keywords><cp:category></cp:category><cp:lastModifiedBy>${xmlEncode(props.lastModifiedBy)}</cp:lastModifiedBy><dcterms:created xsi:type="dcterms:W3CDTF">${W3CDTF(props.created)}</dcterms:created><dcterms:modified xsi:type="dcterms:W3CDTF">${W3CDTF(props.modified)}</dcterms:modified></cp:coreProperties>`],
    ['xl/workbook.xml', `${XML_DECL}<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="${OD}" xmlns:mc="http://schemas.openxmlformats.org/markup-compatibility/2006" mc:Ignorable="x15" xmlns:x15="http://schemas.microsoft.com/office/spreadsheetml/2010/11/main"><fileVersion appName="xl" lastEdited="5" lowestEdited="5" rupBuild="9303"/><workbookPr defaultThemeVersion="164011" filterPrivacy="1"/><sheets>${
      names.map((s, i) => `<sheet sheetId="${i + 1}" name="${s}" state="visible" r:id="rId${i + 4}"/>`).join('')
    }</sheets><calcPr calcId="171027"/></workbook>`],
  ];
  return zip(parts);
}

/** DOS date of 1980-01-01, time 00:00:00 (stages/excel.ts fixZipTimestamps writes the same). */
const DOS_DATE = (0 << 9) | (1 << 5) | 1;

/**
 * A zip archive as JSZip writes it: each file preceded by folder entries for its not yet seen parent folders,
 * local headers without data descriptors (version 1.0 needed, made by 2.0 / MS-DOS), folders stored, files
 * deflated, a fixed timestamp, no comments.
 */
function zip(files: [string, string][]): Buffer {
  const entries: { name: Buffer; data: Buffer; method: number; crc: number; size: number; folder: boolean }[] = [];
  const seen = new Set<string>();
  for (const [name, text] of files) {
    const dirs = name.split('/').slice(0, -1);
    for (let i = 1; i <= dirs.length; i++) {
      const d = `${dirs.slice(0, i).join('/')}/`;
      if (seen.has(d)) continue;
      seen.add(d);
      entries.push({ name: Buffer.from(d), data: Buffer.alloc(0), method: 0, crc: 0, size: 0, folder: true });
    }
    const raw = Buffer.from(text, 'utf8');
    const data = Buffer.from(pako.deflateRaw(raw));
    entries.push({ name: Buffer.from(name), data, method: 8, crc: zlib.crc32(raw), size: raw.length, folder: false });
  }
  const chunks: Buffer[] = [];
  const central: Buffer[] = [];
  let offset = 0;
  for (const e of entries) {
    const common = Buffer.alloc(26);
    common.writeUInt16LE(10, 0); // version needed to extract: 1.0
    common.writeUInt16LE(0, 2); // flags
    common.writeUInt16LE(e.method, 4);
    common.writeUInt16LE(0, 6); // time 00:00:00
    common.writeUInt16LE(DOS_DATE, 8);
    common.writeUInt32LE(e.crc >>> 0, 10);
    common.writeUInt32LE(e.data.length, 14);
    common.writeUInt32LE(e.size, 18);
    common.writeUInt16LE(e.name.length, 22);
    common.writeUInt16LE(0, 24); // extra field length
    const local = Buffer.concat([Buffer.from([0x50, 0x4b, 0x03, 0x04]), common, e.name]);
    const cd = Buffer.alloc(46);
    cd.writeUInt32LE(0x02014b50, 0);
    cd.writeUInt16LE(20, 4); // version made by: 2.0, MS-DOS
    common.copy(cd, 6);
    cd.writeUInt16LE(0, 32); // comment length
    cd.writeUInt16LE(0, 34); // disk number
    cd.writeUInt16LE(0, 36); // internal attributes
    cd.writeUInt32LE(e.folder ? 0x10 : 0, 38); // external attributes: MS-DOS directory flag
    cd.writeUInt32LE(offset, 42);
    central.push(cd, e.name);
    chunks.push(local, e.data);
    offset += local.length + e.data.length;
  }
  const cdBytes = Buffer.concat(central);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(cdBytes.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...chunks, cdBytes, end]);
}
